"""The command families.  Importing this package registers every built-in
row in the command table (see table.py); add a family by importing it here.
"""
from rcluster.commands import (  # noqa: F401
    clients, cluster, config, connection, debug, hashes, introspection, keys,
    lists, pubsub, server, sets, strings, transactions, zsets)

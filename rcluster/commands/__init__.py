"""The command families.  Importing this package registers every built-in
row in the command table (see table.py); add a family by importing it here.
"""
from rcluster.commands import (  # noqa: F401
    appendonly, bitmaps, clients, cluster, config, connection, dbs, debug,
    dump,
    geo, hashes, hyperloglog, introspection, keys, lists, memory_commands,
    migrate,
    persistence, pubsub,
    replication, scripting, server, sets, slowlog_latency, sort, streams,
    strings,
    transactions, zsets)

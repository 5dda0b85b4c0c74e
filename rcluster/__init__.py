"""rcluster: a Redis Cluster 7.0 node, rebuilt in Python on Twisted."""

__version__ = "0.1.0"
# The Redis version rcluster is compatible with, reported where Redis
# reports its own (INFO redis_version, HELLO): clients pick features by it.
REDIS_VERSION = "7.0.15"

"""twistd plugin dropin: ``twistd rcluster``.

Kept tiny and lazy: Twisted imports every dropin to build its plugin cache,
so nothing heavy is imported here - ServiceMaker loads rcluster.tap on use.
"""
from twisted.application.service import ServiceMaker

rcluster = ServiceMaker(
    "rcluster",
    "rcluster.tap",
    "A Redis Cluster 7.0 node (RESP on --port, cluster bus on port+10000; "
    "--tls for TLS). rcluster-server runs one with redis-server's arguments.",
    "rcluster",
)

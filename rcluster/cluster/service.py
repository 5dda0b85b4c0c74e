"""The cluster layer as a Twisted service (bus listener, links, cron).

Placeholder until the cluster bus lands: with no router installed on the
server, keyed commands answer -CLUSTERDOWN in cluster mode.
"""
from twisted.application import service


class ClusterService(service.MultiService):
    def __init__(self, server, settings, reactor):
        super().__init__()
        self.server = server
        self.settings = settings
        self.reactor = reactor

"""A cluster-bus connection (Redis's ``clusterLink``), sans-IO.

An outbound link is created by the cron for a node without one and is
handed to the bus to connect; frames sent before the connection is up
wait in ``pending``.  An inbound link is created when a peer connects to
us; it learns its node from the first packet's sender.  The I/O side calls
``attach(write, close)`` once connected and feeds received bytes to
``ClusterState.link_data``.
"""
from __future__ import annotations

from rcluster.cluster.messages import FrameDecoder


class Link:
    def __init__(self, node, inbound: bool, now: int):
        self.node = node            # None for an inbound link until identified
        self.inbound = inbound
        self.ctime = now
        self.decoder = FrameDecoder()
        self.pending: list = []     # frames queued until the connection is up
        self.pending_bytes = 0
        self._write = None
        self.closer = None          # () -> None: drops the connection
        self.closed = False
        self.was_attached = False   # the connection was up at some point
        self.local_ip = ""          # our address on this connection
        self.peer_ip = ""           # the peer's address

    def __repr__(self):
        name = self.node.name[:8] if self.node is not None else "?"
        return f"<Link {'from' if self.inbound else 'to'} {name}>"

    @property
    def connected(self) -> bool:
        return self._write is not None and not self.closed

    def attach(self, write, close, local_ip: str = "", peer_ip: str = ""):
        """The connection is up: ``write(bytes)`` sends, ``close()`` drops."""
        self._write, self.closer = write, close
        self.was_attached = True
        self.local_ip, self.peer_ip = local_ip, peer_ip
        pending, self.pending, self.pending_bytes = self.pending, [], 0
        for frame in pending:
            write(frame)

    def send(self, frame: bytes):
        if self.closed:
            return
        if self._write is None:
            self.pending.append(frame)
            self.pending_bytes += len(frame)
        else:
            self._write(frame)

    def close(self):
        """Drop the connection (idempotent); the owner detaches the node."""
        if self.closed:
            return
        self.closed = True
        self.pending, self.pending_bytes = [], 0
        if self.closer is not None:
            self.closer()

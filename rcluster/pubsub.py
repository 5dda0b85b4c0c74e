"""Pub/Sub registry, sans-IO: who listens to which channel or pattern.

Two kinds of channels, as in Redis 7: global ones (SUBSCRIBE/PSUBSCRIBE,
PUBLISH reaches every node of a cluster through the bus) and shard ones
(SSUBSCRIBE, SPUBLISH stays within the shard owning the channel's slot).
The cluster layer installs ``on_publish`` to forward messages on the bus.
"""
from __future__ import annotations

from rcluster.glob import compile_glob
from rcluster.resp.codec import Push

MESSAGE = b"message"
PMESSAGE = b"pmessage"
SMESSAGE = b"smessage"


class PubSub:
    def __init__(self, server):
        self.server = server
        self.channels: dict = {}        # channel -> {client: None} (ordered)
        self.patterns: dict = {}        # pattern -> {client: None}
        self.shard_channels: dict = {}  # channel -> {client: None}
        self._matchers: dict = {}       # pattern -> predicate
        # Cluster hook: callable(channel, message, shard: bool).
        self.on_publish = None

    # -- subscriptions ------------------------------------------------------
    def subscribe(self, client, channel, shard=False) -> bool:
        mine = client.shard_channels if shard else client.channels
        table = self.shard_channels if shard else self.channels
        if channel in mine:
            return False
        mine.add(channel)
        table.setdefault(channel, {})[client] = None
        client.refresh()
        return True

    def unsubscribe(self, client, channel, shard=False) -> bool:
        mine = client.shard_channels if shard else client.channels
        table = self.shard_channels if shard else self.channels
        if channel not in mine:
            return False
        mine.discard(channel)
        subscribers = table.get(channel)
        if subscribers is not None:
            subscribers.pop(client, None)
            if not subscribers:
                del table[channel]
        client.refresh()
        return True

    def psubscribe(self, client, pattern) -> bool:
        if pattern in client.patterns:
            return False
        client.patterns.add(pattern)
        if pattern not in self.patterns:
            self._matchers[pattern] = compile_glob(pattern)
        self.patterns.setdefault(pattern, {})[client] = None
        client.refresh()
        return True

    def punsubscribe(self, client, pattern) -> bool:
        if pattern not in client.patterns:
            return False
        client.patterns.discard(pattern)
        subscribers = self.patterns.get(pattern)
        if subscribers is not None:
            subscribers.pop(client, None)
            if not subscribers:
                del self.patterns[pattern]
                self._matchers.pop(pattern, None)
        client.refresh()
        return True

    def forget(self, client):
        for channel in list(client.channels):
            self.unsubscribe(client, channel)
        for channel in list(client.shard_channels):
            self.unsubscribe(client, channel, shard=True)
        for pattern in list(client.patterns):
            self.punsubscribe(client, pattern)

    # -- delivery -------------------------------------------------------------
    def deliver(self, channel: bytes, message: bytes, shard=False) -> int:
        """Send to this node's subscribers; returns how many received it."""
        receivers = 0
        table = self.shard_channels if shard else self.channels
        subscribers = table.get(channel)
        if subscribers:
            kind = SMESSAGE if shard else MESSAGE
            for client in list(subscribers):
                client.push(Push([kind, channel, message]))
                receivers += 1
        if not shard and self.patterns:
            for pattern, subscribers in list(self.patterns.items()):
                if self._matchers[pattern](channel):
                    for client in list(subscribers):
                        client.push(Push([PMESSAGE, pattern, channel, message]))
                        receivers += 1
        return receivers

    def publish(self, channel: bytes, message: bytes, shard=False) -> int:
        """PUBLISH/SPUBLISH: deliver here, and hand to the cluster bus."""
        receivers = self.deliver(channel, message, shard)
        if self.on_publish is not None:
            self.on_publish(channel, message, shard)
        return receivers

    def unsubscribe_shard_channel_everywhere(self, channel):
        """A slot moved away: its shard channels' subscribers are told."""
        subscribers = self.shard_channels.get(channel)
        if not subscribers:
            return
        for client in list(subscribers):
            self.unsubscribe(client, channel, shard=True)
            client.push(Push([b"sunsubscribe", channel,
                              len(client.shard_channels)]))

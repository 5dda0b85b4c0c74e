"""Pub/Sub commands (Redis 7.0's pubsub.c) on the registry in
rcluster/pubsub.py.

Subscription confirmations are pushes: RESP2 arrays, RESP3 ``>`` pushes,
one per channel, each carrying the client's subscription count (channels
plus patterns; shard channels are counted apart).  Like Redis's
CLIENT_PUSHING replies they get through CLIENT REPLY OFF.  Messages are
delivered by the registry; PUBLISH also hands them to the cluster bus
through its ``on_publish`` hook.
"""
from __future__ import annotations

from rcluster.commands.common import (also_propagate, help_subcommand,
                                      subcommand_syntax_error)
from rcluster.commands.table import CommandError, KeySpec, command, container
from rcluster.glob import compile_glob
from rcluster.resp.codec import NO_REPLY, Push, Raw, encode

_G = dict(group="pubsub")
_SUBSCRIBE = "pubsub noscript loading stale sentinel"
_SHARD_SUBSCRIBE = "pubsub noscript loading stale"


def _confirm(c, pushes) -> Raw:
    """The confirmations as this command's reply, or pushed past CLIENT
    REPLY OFF/SKIP (then no reply is queued)."""
    data = Raw(b"".join(encode(push, c.resp3) for push in pushes))
    if c.reply_mode == "on" or c.server.in_exec:
        return data
    c.push(data)
    return NO_REPLY


def _shard_count(c) -> int:
    return len(c.shard_channels)


def _global_count(c) -> int:
    return c.subscriptions


def _subscribe(c, argv, kind: bytes, add, count):
    pushes = []
    for channel in argv[1:]:
        add(c, channel)
        pushes.append(Push([kind, channel, count(c)]))
    return _confirm(c, pushes)


def _unsubscribe(c, argv, kind: bytes, current, remove, count):
    """Unsubscribe from the given names, or from all; with nothing to
    leave, one confirmation with a null name."""
    names = argv[1:] or sorted(current)
    if not names:
        return _confirm(c, [Push([kind, None, count(c)])])
    pushes = []
    for name in names:
        remove(c, name)
        pushes.append(Push([kind, name, count(c)]))
    return _confirm(c, pushes)


@command("subscribe", -2, _SUBSCRIBE, since="2.0.0",
         summary="Listen for messages published to the given channels",
         complexity="O(N) where N is the number of channels to subscribe to.",
         **_G)
def subscribe(c, argv):
    return _subscribe(c, argv, b"subscribe", c.server.pubsub.subscribe,
                      _global_count)


@command("unsubscribe", -1, _SUBSCRIBE, since="2.0.0",
         summary="Stop listening for messages posted to the given channels",
         complexity="O(N) where N is the number of clients already "
                    "subscribed to a channel.", **_G)
def unsubscribe(c, argv):
    return _unsubscribe(c, argv, b"unsubscribe", c.channels,
                        c.server.pubsub.unsubscribe, _global_count)


@command("psubscribe", -2, _SUBSCRIBE, since="2.0.0",
         summary="Listen for messages published to channels matching the "
                 "given patterns",
         complexity="O(N) where N is the number of patterns the client is "
                    "already subscribed to.", **_G)
def psubscribe(c, argv):
    return _subscribe(c, argv, b"psubscribe", c.server.pubsub.psubscribe,
                      _global_count)


@command("punsubscribe", -1, _SUBSCRIBE, since="2.0.0",
         summary="Stop listening for messages posted to channels matching "
                 "the given patterns",
         complexity="O(N+M) where N is the number of patterns the client is "
                    "already subscribed and M is the number of total "
                    "patterns subscribed in the system (by any client).",
         **_G)
def punsubscribe(c, argv):
    return _unsubscribe(c, argv, b"punsubscribe", c.patterns,
                        c.server.pubsub.punsubscribe, _global_count)


_CHANNELS = KeySpec(flags=("not_key",), index=1, lastkey=-1)


def _shard_subscribe(c, channel):
    return c.server.pubsub.subscribe(c, channel, shard=True)


def _shard_unsubscribe(c, channel):
    return c.server.pubsub.unsubscribe(c, channel, shard=True)


@command("ssubscribe", -2, _SHARD_SUBSCRIBE, specs=[_CHANNELS],
         since="7.0.0",
         summary="Listen for messages published to the given shard channels",
         complexity="O(N) where N is the number of shard channels to "
                    "subscribe to.", **_G)
def ssubscribe(c, argv):
    # Unlike SUBSCRIBE, not even allowed inside MULTI (CLIENT_DENY_BLOCKING).
    if c.server.in_exec:
        raise CommandError(
            "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client")
    return _subscribe(c, argv, b"ssubscribe", _shard_subscribe, _shard_count)


@command("sunsubscribe", -1, _SHARD_SUBSCRIBE, specs=[_CHANNELS],
         since="7.0.0",
         summary="Stop listening for messages posted to the given shard "
                 "channels",
         complexity="O(N) where N is the number of clients already "
                    "subscribed to a shard channel.", **_G)
def sunsubscribe(c, argv):
    return _unsubscribe(c, argv, b"sunsubscribe", c.shard_channels,
                        _shard_unsubscribe, _shard_count)


def _publish(c, argv, name: str, shard: bool):
    """PUBLISH and SPUBLISH: the number of clients that got the message."""
    server = c.server
    receivers = server.pubsub.publish(argv[1], argv[2], shard=shard)
    # A standalone master replicates them (Redis's forceCommandPropagation);
    # a cluster uses the bus.
    if not server.settings.cluster_enabled:
        also_propagate(c, argv)
    return receivers


@command("publish", 3, "pubsub loading stale fast may_replicate sentinel",
         since="2.0.0", summary="Post a message to a channel",
         complexity="O(N+M) where N is the number of clients subscribed to "
                    "the receiving channel and M is the total number of "
                    "subscribed patterns (by any client).", **_G)
def publish(c, argv):
    return _publish(c, argv, "publish", shard=False)


@command("spublish", 3, "pubsub loading stale fast may_replicate",
         specs=[KeySpec(flags=("not_key",), index=1, lastkey=0)],
         since="7.0.0", summary="Post a message to a shard channel",
         complexity="O(N) where N is the number of clients subscribed to the "
                    "receiving shard channel.", **_G)
def spublish(c, argv):
    return _publish(c, argv, "spublish", shard=True)


# -- PUBSUB -------------------------------------------------------------------

container("pubsub", since="2.8.0", summary="A container for Pub/Sub commands",
          **_G)

_SUB = dict(parent="pubsub", **_G)


def _channel_list(channels, argv) -> list:
    if len(argv) == 2:
        return list(channels)
    match = compile_glob(argv[2])
    return [channel for channel in channels if match(channel)]


def _numsub(channels, argv) -> list:
    out = []
    for channel in argv[2:]:
        out += [channel, len(channels.get(channel, ()))]
    return out


def _at_most_one_pattern(argv):
    if len(argv) > 3:
        raise subcommand_syntax_error(argv)


@command("channels", -2, "pubsub loading stale", since="2.8.0",
         summary="List active channels",
         complexity="O(N) where N is the number of active channels, and "
                    "assuming constant time pattern matching (relatively "
                    "short channels and patterns)", **_SUB)
def pubsub_channels(c, argv):
    _at_most_one_pattern(argv)
    return _channel_list(c.server.pubsub.channels, argv)


@command("numsub", -2, "pubsub loading stale", since="2.8.0",
         summary="Get the count of subscribers for channels",
         complexity="O(N) for the NUMSUB subcommand, where N is the number "
                    "of requested channels", **_SUB)
def pubsub_numsub(c, argv):
    return _numsub(c.server.pubsub.channels, argv)


@command("numpat", 2, "pubsub loading stale", since="2.8.0",
         summary="Get the count of unique patterns pattern subscriptions",
         complexity="O(1)", **_SUB)
def pubsub_numpat(c, argv):
    return len(c.server.pubsub.patterns)


@command("shardchannels", -2, "pubsub loading stale", since="7.0.0",
         summary="List active shard channels",
         complexity="O(N) where N is the number of active shard channels, "
                    "and assuming constant time pattern matching (relatively "
                    "short shard channels).", **_SUB)
def pubsub_shardchannels(c, argv):
    _at_most_one_pattern(argv)
    return _channel_list(c.server.pubsub.shard_channels, argv)


@command("shardnumsub", -2, "pubsub loading stale", since="7.0.0",
         summary="Get the count of subscribers for shard channels",
         complexity="O(N) for the SHARDNUMSUB subcommand, where N is the "
                    "number of requested shard channels", **_SUB)
def pubsub_shardnumsub(c, argv):
    return _numsub(c.server.pubsub.shard_channels, argv)


_PUBSUB_HELP = (
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> "
    "(default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, "
    "excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a "
    "<pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level "
    "channel(s)",
)


pubsub_help = help_subcommand(_PUBSUB_HELP, since="6.2.0", acl="", **_SUB)

"""Pub/Sub commands (rcluster/commands/pubsub.py): delivery between clients,
RESP2 and RESP3 reply shapes byte for byte as Redis 7.0.15 sends them."""
from types import SimpleNamespace

from rcluster.cluster.routing import Router
from tests.protocol.helpers import ServerTestCase


class SubscribeTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.publisher = self.connect()

    def publish(self, channel, message, command="PUBLISH"):
        return self.call(command, channel, message, client=self.publisher)

    def test_subscribe_and_messages(self):
        self.assertEqual(
            self.raw("SUBSCRIBE", "news", "sport"),
            b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
            b"*3\r\n$9\r\nsubscribe\r\n$5\r\nsport\r\n:2\r\n")
        self.transport.clear()
        self.assertEqual(self.publish("news", "hello"), 1)
        self.assertEqual(self.transport.value(),
                         b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n")
        self.assertEqual(self.publish("weather", "rain"), 0)

    def test_patterns(self):
        self.assertEqual(self.raw("PSUBSCRIBE", "n*"),
                         b"*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:1\r\n")
        self.raw("SUBSCRIBE", "news")
        self.transport.clear()
        self.assertEqual(self.publish("news", "x"), 2)
        self.assertEqual(self.transport.value(),
                         b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$1\r\nx\r\n"
                         b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n"
                         b"$1\r\nx\r\n")
        self.assertEqual(self.raw("PUNSUBSCRIBE", "n*", "zz"),
                         b"*3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:1\r\n"
                         b"*3\r\n$12\r\npunsubscribe\r\n$2\r\nzz\r\n:1\r\n")

    def test_shard_channels_count_apart(self):
        self.assertEqual(
            self.raw("SSUBSCRIBE", "a", "b"),
            b"*3\r\n$10\r\nssubscribe\r\n$1\r\na\r\n:1\r\n"
            b"*3\r\n$10\r\nssubscribe\r\n$1\r\nb\r\n:2\r\n")
        self.assertEqual(self.raw("SUBSCRIBE", "c"),
                         b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n")
        self.transport.clear()
        self.assertEqual(self.publish("a", "m", "SPUBLISH"), 1)
        self.assertEqual(self.publish("a", "m"), 0)   # a global channel
        self.assertEqual(self.transport.value(),
                         b"*3\r\n$8\r\nsmessage\r\n$1\r\na\r\n$1\r\nm\r\n")
        self.assertEqual(
            self.raw("SUNSUBSCRIBE"),
            b"*3\r\n$12\r\nsunsubscribe\r\n$1\r\na\r\n:1\r\n"
            b"*3\r\n$12\r\nsunsubscribe\r\n$1\r\nb\r\n:0\r\n")

    def test_unsubscribe_all_and_nothing(self):
        self.raw("SUBSCRIBE", "b", "a")
        self.assertEqual(
            self.raw("UNSUBSCRIBE"),
            b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n"
            b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n")
        self.assertEqual(self.raw("UNSUBSCRIBE"),
                         b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n")
        self.assertEqual(self.raw("PUNSUBSCRIBE"),
                         b"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n")
        self.assertEqual(self.call("GET", "x"), None)  # out of pub/sub mode

    def test_resp2_context(self):
        self.raw("SUBSCRIBE", "a")
        self.assertEqual(self.call("GET", "x"),
                         "ERR Can't execute 'get': only (P|S)SUBSCRIBE / "
                         "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed "
                         "in this context")
        self.assertEqual(self.raw("PING"),
                         b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")

    def test_resp3_pushes(self):
        self.raw("HELLO", "3")
        self.assertEqual(self.raw("SUBSCRIBE", "a"),
                         b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
        self.assertEqual(self.raw("SET", "k", "v"), b"+OK\r\n")   # allowed
        self.transport.clear()
        self.publish("a", "hi")
        self.assertEqual(self.transport.value(),
                         b">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n")
        self.assertEqual(self.raw("UNSUBSCRIBE", "zz"),
                         b">3\r\n$11\r\nunsubscribe\r\n$2\r\nzz\r\n:1\r\n")
        self.assertEqual(self.raw("PUNSUBSCRIBE"),
                         b">3\r\n$12\r\npunsubscribe\r\n_\r\n:1\r\n")

    def test_publisher_subscribed_in_resp3_gets_its_message_first(self):
        self.raw("HELLO", "3")
        self.raw("SUBSCRIBE", "a")
        self.assertEqual(self.raw("PUBLISH", "a", "x"),
                         b">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nx\r\n:1\r\n")

    def test_confirmations_get_through_client_reply_off(self):
        self.raw("CLIENT", "REPLY", "OFF")
        self.assertEqual(self.raw("SUBSCRIBE", "a"),
                         b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")

    def test_transactions(self):
        self.raw("MULTI")
        self.raw("SUBSCRIBE", "a")
        self.assertEqual(self.raw("EXEC"),
                         b"*1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
        other = self.connect()
        self.call("MULTI", client=other)
        self.call("SSUBSCRIBE", "a", client=other)
        self.assertEqual(self.raw("EXEC", client=other),
                         b"*1\r\n-ERR SSUBSCRIBE isn't allowed for a DENY "
                         b"BLOCKING client\r\n")

    def test_gone_clients_leave_their_channels(self):
        self.raw("SUBSCRIBE", "a")
        self.proto.connectionLost(None)
        self.assertEqual(self.publish("a", "x"), 0)

    def test_hooks(self):
        published = []
        self.server.pubsub.on_publish = \
            lambda *args: published.append(args)
        propagated = self.capture_propagation()
        self.publish("a", "x")
        self.publish("s", "y", "SPUBLISH")
        self.assertEqual(published, [(b"a", b"x", False), (b"s", b"y", True)])
        self.assertEqual(propagated, [[b"PUBLISH", b"a", b"x"],
                                      [b"SPUBLISH", b"s", b"y"]])


class PubsubIntrospectionTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        for channels in (("news", "sport"), ("news",)):
            self.raw("SUBSCRIBE", *channels, client=self.connect())
        self.raw("PSUBSCRIBE", "n*", "s*", client=self.connect())
        self.raw("SSUBSCRIBE", "shard", client=self.connect())

    def test_channels(self):
        self.assertEqual(self.call("PUBSUB", "CHANNELS"), [b"news", b"sport"])
        self.assertEqual(self.call("PUBSUB", "CHANNELS", "n*"), [b"news"])
        self.assertEqual(self.call("PUBSUB", "SHARDCHANNELS"), [b"shard"])
        self.assertEqual(self.call("PUBSUB", "SHARDCHANNELS", "x*"), [])
        self.assertEqual(self.call("PUBSUB", "CHANNELS", "a", "b"),
                         "ERR unknown subcommand or wrong number of arguments "
                         "for 'CHANNELS'. Try PUBSUB HELP.")

    def test_counts(self):
        self.assertEqual(self.raw("PUBSUB", "NUMSUB", "news", "none"),
                         b"*4\r\n$4\r\nnews\r\n:2\r\n$4\r\nnone\r\n:0\r\n")
        self.assertEqual(self.call("PUBSUB", "NUMSUB"), [])
        self.assertEqual(self.call("PUBSUB", "NUMPAT"), 2)
        self.assertEqual(self.call("PUBSUB", "SHARDNUMSUB", "shard"),
                         [b"shard", 1])

    def test_info_counts(self):
        info = self.call("INFO", "stats").decode()
        self.assertIn("\r\npubsub_channels:2\r\npubsub_patterns:2\r\n"
                      "pubsubshard_channels:1\r\n", info)

    def test_help(self):
        lines = self.call("PUBSUB", "HELP")
        self.assertEqual(lines[0], b"PUBSUB <subcommand> [<arg> [value] [opt] "
                                   b"...]. Subcommands are:")
        self.assertEqual(len(lines), 14)


class _OneNodeState:
    """Just enough cluster state for the router: this node has every slot."""
    is_ok = True
    myself = SimpleNamespace(is_master=True, replicaof=None)

    def slot_owner(self, slot):
        return self.myself

    def migrating_to(self, slot):
        return None

    def importing_from(self, slot):
        return None


class ClusterTests(ServerTestCase):
    directives = {"cluster_enabled": "yes"}

    def test_shard_channels_must_share_a_slot(self):
        self.assertEqual(self.call("SSUBSCRIBE", "a", "b"),
                         "CLUSTERDOWN Hash slot not served")
        self.server.router = Router(_OneNodeState(), self.server)
        self.assertEqual(self.call("SSUBSCRIBE", "a", "b"),
                         "CROSSSLOT Keys in request don't hash to the same "
                         "slot")
        self.assertEqual(self.raw("SSUBSCRIBE", "{t}a", "{t}b"),
                         b"*3\r\n$10\r\nssubscribe\r\n$4\r\n{t}a\r\n:1\r\n"
                         b"*3\r\n$10\r\nssubscribe\r\n$4\r\n{t}b\r\n:2\r\n")
        self.assertEqual(self.call("PUBLISH", "a", "b",
                                   client=self.connect()), 0)

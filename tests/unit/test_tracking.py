"""Client-side caching (rcluster/tracking.py, CLIENT TRACKING & co.) on
StringTransport: each mode (default, BCAST with prefixes, OPTIN/OPTOUT
with CLIENT CACHING, NOLOOP, REDIRECT over RESP2 with the pub/sub
message) and each trigger (write, expiry, eviction, flush, table
overflow, a slot leaving the node), with the bytes Redis 7.0.15 sends
(checked against redis-server)."""
from rcluster.cluster.keyslot import keyslot
from rcluster.cluster.service import ServerHost
from tests.protocol.helpers import ServerTestCase, bulks


def push(*keys) -> bytes:
    """A RESP3 invalidation push of keys."""
    return b">2\r\n$10\r\ninvalidate\r\n" + bulks(*keys)


NULL_PUSH = b">2\r\n$10\r\ninvalidate\r\n_\r\n"
MESSAGE = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"


def info_field(text: bytes, name: str) -> int:
    for line in text.decode().split("\r\n"):
        if line.startswith(name + ":"):
            return int(line.split(":")[1])
    raise AssertionError(name)


class TrackingTestCase(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.resp3()                        # the first client: RESP3
        self.writer = self.connect()

    def raw(self, *args, client=None) -> bytes:
        """A command's reply; the transport is left empty, so that
        ``sent`` shows only what came afterwards."""
        data = super().raw(*args, client=client)
        (client or (self.proto, self.transport))[1].clear()
        return data

    def track(self, *options, client=None):
        self.assertEqual(self.call("CLIENT", "TRACKING", "on", *options,
                                   client=client), b"OK")

    def write(self, *args):
        return self.call(*args, client=self.writer)

    def sent(self, client=None) -> bytes:
        """What the client got since its last reply, once the reactor
        turn is over (messages to idle clients are written then)."""
        self.clock.advance(0)
        return self.pending(client or (self.proto, self.transport))

    def info(self, name) -> int:
        return info_field(self.call("INFO", "everything",
                                    client=self.writer), name)


class CommandTests(TrackingTestCase):
    def error(self, *options) -> str:
        return self.call("CLIENT", "TRACKING", *options)

    def test_option_checks(self):
        cases = [
            (("on", "PREFIX", "a"),
             "PREFIX option requires BCAST mode to be enabled"),
            (("on", "OPTIN", "OPTOUT"),
             "You can't specify both OPTIN mode and OPTOUT mode"),
            (("on", "BCAST", "OPTIN"),
             "OPTIN and OPTOUT are not compatible with BCAST"),
            (("on", "REDIRECT", "999"),
             "The client ID you want redirect to does not exist"),
            (("on", "REDIRECT", "0"),
             "The client ID you want redirect to does not exist"),
            (("on", "REDIRECT", "x"),
             "value is not an integer or out of range"),
            (("on", "REDIRECT", "1", "REDIRECT", "2"),
             "A client can only redirect to a single other client"),
            (("on", "foo"), "syntax error"),
            (("on", "PREFIX"), "syntax error"),
            (("maybe",), "syntax error"),
            (("off", "REDIRECT", "999"),
             "The client ID you want redirect to does not exist"),
            (("on", "BCAST", "PREFIX", "a", "PREFIX", "ab"),
             "Prefix 'a' overlaps with another provided prefix 'ab'. "
             "Prefixes for a single client must not overlap."),
        ]
        for options, text in cases:
            self.assertEqual(self.error(*options), "ERR " + text, options)
        self.assertEqual(self.info("tracking_clients"), 0)

    def test_mode_switches_refused(self):
        self.track("OPTIN")
        self.assertEqual(
            self.error("on", "OPTOUT"),
            "ERR You can't switch OPTIN/OPTOUT mode before disabling "
            "tracking for this client, and then re-enabling it with a "
            "different mode.")
        self.assertEqual(
            self.error("on", "BCAST"),
            "ERR You can't switch BCAST mode on/off before disabling "
            "tracking for this client, and then re-enabling it with a "
            "different mode.")
        self.track("OPTIN", "NOLOOP")       # same mode again: allowed
        self.assertEqual(self.info("tracking_clients"), 1)

    def test_prefixes_accumulate_and_must_not_overlap(self):
        self.track("BCAST", "PREFIX", "b", "PREFIX", "ab")
        self.assertEqual(
            self.error("on", "BCAST", "PREFIX", "abc"),
            "ERR Prefix 'abc' overlaps with an existing prefix 'ab'. "
            "Prefixes for a single client must not overlap.")
        self.track("BCAST", "PREFIX", "x")
        self.assertEqual(
            self.raw("CLIENT", "TRACKINGINFO"),
            b"%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$5\r\nbcast\r\n"
            b"$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*3\r\n$2\r\nab\r\n"
            b"$1\r\nb\r\n$1\r\nx\r\n")
        self.assertEqual(self.info("tracking_total_prefixes"), 3)
        self.call("CLIENT", "TRACKING", "off")
        self.assertEqual(self.info("tracking_total_prefixes"), 0)

    def test_many_prefixes_checked_without_pairwise_work(self):
        many = ["p%05d:" % i for i in range(20000)]
        self.track("BCAST", *[w for p in many for w in ("PREFIX", p)])
        self.assertEqual(self.info("tracking_total_prefixes"), 20000)
        self.assertEqual(
            self.error("on", "BCAST", "PREFIX", "q", "PREFIX", "p01234:x"),
            "ERR Prefix 'p01234:x' overlaps with an existing prefix "
            "'p01234:'. Prefixes for a single client must not overlap.")
        other = self.connect()
        self.assertEqual(
            self.call("CLIENT", "TRACKING", "on", "BCAST",
                      *[w for p in many + ["p00007:z"]
                        for w in ("PREFIX", p)], client=other),
            "ERR Prefix 'p00007:' overlaps with another provided prefix "
            "'p00007:z'. Prefixes for a single client must not overlap.")

    def test_trackinginfo_getredir_and_caching(self):
        self.assertEqual(
            self.raw("CLIENT", "TRACKINGINFO"),
            b"%3\r\n$5\r\nflags\r\n~1\r\n$3\r\noff\r\n$8\r\nredirect\r\n"
            b":-1\r\n$8\r\nprefixes\r\n*0\r\n")
        self.assertEqual(self.call("CLIENT", "GETREDIR"), -1)
        self.assertEqual(
            self.call("CLIENT", "CACHING", "yes"),
            "ERR CLIENT CACHING can be called only when the client is in "
            "tracking mode with OPTIN or OPTOUT mode enabled")
        self.track("OPTIN")
        self.assertEqual(self.call("CLIENT", "CACHING", "no"),
                         "ERR CLIENT CACHING NO is only valid when tracking "
                         "is enabled in OPTOUT mode.")
        self.assertEqual(self.call("CLIENT", "CACHING", "maybe"),
                         "ERR syntax error")
        self.assertEqual(self.call("CLIENT", "CACHING", "yes"), b"OK")
        # CLIENT subcommands keep the CACHING flag for the next command.
        self.assertEqual(
            self.raw("CLIENT", "TRACKINGINFO"),
            b"%3\r\n$5\r\nflags\r\n~3\r\n$2\r\non\r\n$5\r\noptin\r\n"
            b"$11\r\ncaching-yes\r\n$8\r\nredirect\r\n:0\r\n"
            b"$8\r\nprefixes\r\n*0\r\n")
        self.assertEqual(self.call("CLIENT", "GETREDIR"), 0)
        self.call("CLIENT", "TRACKING", "off")
        self.track("OPTOUT", "NOLOOP")
        self.assertEqual(self.call("CLIENT", "CACHING", "yes"),
                         "ERR CLIENT CACHING YES is only valid when tracking "
                         "is enabled in OPTIN mode.")
        self.assertEqual(self.call("CLIENT", "CACHING", "no"), b"OK")
        self.assertEqual(self.call("CLIENT", "TRACKINGINFO")[b"flags"],
                         [b"on", b"optout", b"caching-no", b"noloop"])

    def test_client_list_flags_and_redir(self):
        target = self.connect()
        tid = self.call("CLIENT", "ID", client=target)
        self.track("REDIRECT", tid)
        info = self.call("CLIENT", "INFO")
        self.assertIn(b" flags=t ", info)
        self.assertIn(b" redir=%d " % tid, info)
        self.assertEqual(self.call("CLIENT", "GETREDIR"), tid)
        self.call("CLIENT", "TRACKING", "off")
        self.track("BCAST")
        self.assertIn(b" flags=tB ", self.call("CLIENT", "INFO"))
        self.assertIn(b" redir=0 ", self.call("CLIENT", "INFO"))
        self.call("CLIENT", "TRACKING", "off")
        info = self.call("CLIENT", "INFO")
        self.assertIn(b" flags=N ", info)
        self.assertIn(b" redir=-1 ", info)


class DefaultModeTests(TrackingTestCase):
    def test_write_invalidates_once_then_forgets(self):
        self.track()
        self.assertEqual(self.call("GET", "k1"), None)
        self.assertEqual(self.call("MGET", "k2", "k3"), [None, None])
        self.assertEqual(self.info("tracking_total_keys"), 3)
        self.assertEqual(self.info("tracking_total_items"), 3)
        self.assertEqual(self.info("tracking_clients"), 1)
        self.write("SET", "k1", "v")
        self.assertEqual(self.sent(), push("k1"))
        self.write("MSET", "k2", "v", "k3", "v")
        self.assertEqual(self.sent(), push("k2") + push("k3"))
        self.write("SET", "k1", "w")        # forgotten: not read since
        self.assertEqual(self.sent(), b"")
        self.assertEqual(self.info("tracking_total_keys"), 0)
        self.assertEqual(self.info("tracking_total_items"), 0)

    def test_every_reader_is_told(self):
        other = self.connect(resp3=True)
        self.track()
        self.track(client=other)
        self.call("GET", "k")
        self.call("GET", "k", client=other)
        self.call("GET", "k", client=other)
        self.assertEqual(self.info("tracking_total_items"), 2)
        self.write("DEL", "k")              # nothing deleted: no change
        self.write("SET", "k", "1")
        self.assertEqual(self.sent(), push("k"))
        self.assertEqual(self.sent(other), push("k"))

    def test_only_reads_are_remembered(self):
        self.track()
        self.call("SET", "w", "1")
        self.call("PUBLISH", "ch", "x")
        self.call("TYPE", "t")              # readonly: remembered
        self.assertEqual(self.info("tracking_total_keys"), 1)

    def test_own_write_after_the_reply(self):
        self.track()
        self.call("GET", "k")
        self.assertEqual(self.raw("SET", "k", "x"), b"+OK\r\n" + push("k"))
        # Pipelined: the invalidation sits between the two replies.
        self.call("GET", "k")
        self.assertEqual(
            self.raw_many([b"SET", b"k", b"y"], [b"GET", b"k"]),
            b"+OK\r\n" + push("k") + b"$1\r\ny\r\n")

    def raw_many(self, *requests) -> bytes:
        self.transport.clear()
        self.proto.dataReceived(b"".join(bulks(*r) for r in requests))
        return self.sent()

    def test_transaction_invalidations_after_exec(self):
        self.track()
        self.call("GET", "k")
        self.call("MULTI")
        self.call("SET", "k", "z")
        self.call("GET", "k")
        self.assertEqual(self.raw("EXEC"),
                         b"*2\r\n+OK\r\n$1\r\nz\r\n" + push("k"))

    def test_scripts_remember_their_declared_keys(self):
        self.track()
        self.call("EVAL", "redis.call('GET', 'zz') "
                  "return redis.call('GET', KEYS[1])", 2, "s3", "s4")
        self.call("EVAL_RO", "return redis.call('GET', KEYS[1])", 1, "r1")
        self.call("EVAL", "return redis.call('SET', KEYS[1], 'x')", 1, "w1")
        self.assertEqual(self.info("tracking_total_keys"), 3)
        self.write("MSET", "s3", 1, "s4", 1, "zz", 1, "r1", 1, "w1", 2)
        self.assertEqual(self.sent(), push("s3") + push("s4") + push("r1"))

    def test_script_writes_count_as_the_callers(self):
        self.track()
        self.call("GET", "k")
        self.assertEqual(
            self.raw("EVAL", "return redis.call('SET', KEYS[1], 'x')", 1,
                     "k"), b"+OK\r\n" + push("k"))
        self.track("NOLOOP")
        self.call("GET", "k")
        self.assertEqual(
            self.raw("EVAL", "return redis.call('SET', KEYS[1], 'y')", 1,
                     "k"), b"+OK\r\n")

    def test_noloop(self):
        self.track("NOLOOP")
        self.call("GET", "k")
        self.assertEqual(self.raw("SET", "k", "1"), b"+OK\r\n")
        self.call("GET", "k")
        self.write("SET", "k", "2")
        self.assertEqual(self.sent(), push("k"))

    def test_resp2_without_redirect_gets_nothing(self):
        self.call("HELLO", 2)
        self.track()
        self.call("GET", "k")
        self.write("SET", "k", "1")
        self.assertEqual(self.sent(), b"")
        self.assertEqual(self.info("tracking_total_keys"), 0)

    def test_hello_switches_where_messages_go(self):
        self.track()
        self.call("GET", "k")
        self.call("HELLO", 2)
        self.write("SET", "k", "1")
        self.assertEqual(self.sent(), b"")   # RESP2: nowhere to push
        self.call("GET", "k")
        self.resp3()
        self.write("SET", "k", "2")
        self.assertEqual(self.sent(), push("k"))


class TriggerTests(TrackingTestCase):
    def test_active_expiry(self):
        self.track()
        self.write("SET", "e", "1", "PX", 250)
        self.call("GET", "e")
        self.clock.advance(0.5)
        self.server.cron()
        self.assertEqual(self.sent(), push("e"))

    def test_lazy_expiry_on_another_clients_read(self):
        self.track()
        self.write("SET", "e", "1", "PX", 250)
        self.call("GET", "e")
        self.clock.advance(0.5)
        self.assertEqual(self.write("GET", "e"), None)
        self.assertEqual(self.sent(), push("e"))

    def test_lazy_expiry_on_own_read_comes_after_the_reply(self):
        self.track()
        self.write("SET", "e", "1", "PX", 250)
        self.call("GET", "e")
        self.clock.advance(0.5)
        self.assertEqual(self.raw("GET", "e"), b"_\r\n" + push("e"))
        # The read registered the key again.
        self.assertEqual(self.info("tracking_total_keys"), 1)

    def test_server_deletion_such_as_eviction(self):
        self.track()
        self.write("SET", "k", "1")
        self.call("GET", "k")
        self.ks.delete(b"k")
        self.server.write_path.deleted(b"k")
        self.assertEqual(self.sent(), push("k"))

    def test_eviction(self):
        keys = [b"k%d" % i for i in range(20)]
        for key in keys:
            self.write("SET", key, b"v" * 100)
        self.track()
        self.call("MGET", *keys)
        used = self.server.evictor.used()
        self.write("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
        self.write("CONFIG", "SET", "maxmemory", used - 500)
        self.write("PING")                  # evicts before running
        evicted = [key for key in keys if key not in self.ks]
        self.assertTrue(evicted)
        self.assertEqual(self.server.stats.evicted_keys, len(evicted))
        data = self.sent()
        received = sorted(data.split(b">2\r\n")[1:])
        self.assertEqual(received, sorted(push(key)[4:] for key in evicted))

    def test_flush_sends_null_and_empties_the_table(self):
        bcast = self.connect(resp3=True)
        self.track()
        self.track("BCAST", client=bcast)
        self.call("GET", "a")
        self.call("GET", "b")
        self.write("FLUSHALL")
        self.assertEqual(self.sent(), NULL_PUSH)
        self.assertEqual(self.sent(bcast), NULL_PUSH)
        self.assertEqual(self.info("tracking_total_keys"), 0)
        self.assertEqual(self.info("tracking_total_items"), 0)
        self.call("GET", "a")
        self.assertEqual(self.raw("FLUSHDB"), b"+OK\r\n" + NULL_PUSH)

    def test_table_overflow(self):
        self.write("CONFIG", "SET", "tracking-table-max-keys", "2")
        self.track()
        self.call("GET", "k1")
        self.call("GET", "k2")
        self.assertEqual(self.raw("GET", "k3"), b"_\r\n" + push("k1"))
        self.assertEqual(self.info("tracking_total_keys"), 2)
        self.write("CONFIG", "SET", "tracking-table-max-keys", "0")
        self.call("MGET", "x", "y", "x")
        self.assertEqual(self.info("tracking_total_keys"), 4)
        self.write("SET", "k1", "1")        # forgotten by the overflow
        self.write("SET", "k2", "1")
        self.assertEqual(self.sent(), push("k2"))


    def test_table_limit_enforced_by_cron(self):
        self.track()
        self.call("MGET", "k1", "k2", "k3", "k4")
        self.write("CONFIG", "SET", "tracking-table-max-keys", "2")
        self.assertEqual(self.sent(), b"")
        self.server.cron()                  # nobody reads: the cron drops
        self.assertEqual(self.sent(), push("k1") + push("k2"))
        self.assertEqual(self.info("tracking_total_keys"), 2)


class OptInOutTests(TrackingTestCase):
    def test_optin_tracks_only_after_caching_yes(self):
        self.track("OPTIN")
        self.call("GET", "a")
        self.call("CLIENT", "CACHING", "yes")
        self.call("GET", "b")
        self.call("GET", "c")               # the flag lasted one command
        self.assertEqual(self.info("tracking_total_keys"), 1)
        self.write("MSET", "a", "1", "b", "1", "c", "1")
        self.assertEqual(self.sent(), push("b"))

    def test_optin_caching_covers_a_transaction(self):
        self.track("OPTIN")
        self.call("CLIENT", "CACHING", "yes")
        self.call("MULTI")
        self.call("GET", "a")
        self.call("GET", "b")
        self.call("EXEC")
        self.call("GET", "c")
        self.write("MSET", "a", "1", "b", "1", "c", "1")
        self.assertEqual(self.sent(), push("a") + push("b"))

    def test_optout_skips_after_caching_no(self):
        self.track("OPTOUT")
        self.call("GET", "a")
        self.call("CLIENT", "CACHING", "no")
        self.call("GET", "b")
        self.call("GET", "c")
        self.write("MSET", "a", "1", "b", "1", "c", "1")
        self.assertEqual(self.sent(), push("a") + push("c"))


class BcastTests(TrackingTestCase):
    def test_prefixes_batched_once_per_turn(self):
        self.track("BCAST", "PREFIX", "user:", "PREFIX", "obj:")
        self.call("GET", "user:1")          # reads are not remembered
        self.assertEqual(self.info("tracking_total_keys"), 0)
        self.write("MSET", "user:2", "x", "user:1", "y", "obj:1", "z",
                   "other", "q")
        self.write("SET", "user:3", "x")
        # Not before the turn ends.
        self.assertEqual(self.pending((self.proto, self.transport)), b"")
        # Prefixes in sorted order, keys sorted within each.
        self.assertEqual(self.sent(),
                         push("obj:1") + push("user:1", "user:2", "user:3"))
        self.clock.advance(0)
        self.assertEqual(self.sent(), b"")

    def test_all_keys_and_noloop(self):
        loop = self.connect(resp3=True)
        self.track("BCAST", "NOLOOP")
        self.track("BCAST", client=loop)
        self.call("MSET", "a", "1", "b", "2")
        self.write("MSET", "b", "3", "c", "4")
        self.clock.advance(0)
        # NOLOOP: b was last written by the writer, so it is reported.
        self.assertEqual(self.sent(), push("b", "c"))
        self.assertEqual(self.sent(loop), push("a", "b", "c"))
        self.call("SET", "own", "1")
        self.clock.advance(0)
        self.assertEqual(self.sent(), b"")
        self.assertEqual(self.sent(loop), push("own"))

    def test_expiry_reaches_bcast_clients(self):
        self.track("BCAST", "PREFIX", "e")
        self.write("SET", "e1", "1", "PX", 250)
        self.clock.advance(0)
        self.assertEqual(self.sent(), push("e1"))     # the SET itself
        self.clock.advance(0.5)
        self.server.cron()
        self.clock.advance(0)
        self.assertEqual(self.sent(), push("e1"))


class RedirectTests(TrackingTestCase):
    def setUp(self):
        super().setUp()
        self.target = self.connect()
        self.tid = self.call("CLIENT", "ID", client=self.target)

    def test_resp2_target_gets_pubsub_messages(self):
        self.raw("SUBSCRIBE", "__redis__:invalidate", client=self.target)
        self.call("HELLO", 2)
        self.track("REDIRECT", self.tid)
        self.call("GET", "k")
        self.write("SET", "k", "1")
        self.assertEqual(self.sent(self.target), MESSAGE + bulks("k"))
        self.assertEqual(self.sent(), b"")
        # A flush: the null of the tracking client's protocol (RESP2 here,
        # RESP3 below), as Redis writes it.
        self.write("FLUSHALL")
        self.assertEqual(self.sent(self.target), MESSAGE + b"$-1\r\n")
        self.resp3()
        self.write("FLUSHALL")
        self.assertEqual(self.sent(self.target), MESSAGE + b"_\r\n")

    def test_resp2_target_outside_pubsub_gets_nothing(self):
        self.track("REDIRECT", self.tid)
        self.call("GET", "k")
        self.write("SET", "k", "1")
        self.assertEqual(self.sent(self.target), b"")
        self.assertEqual(self.sent(), b"")

    def test_resp3_target_gets_pushes(self):
        self.resp3(self.target)
        self.track("REDIRECT", self.tid)
        self.call("GET", "k")
        self.write("SET", "k", "1")
        self.assertEqual(self.sent(self.target), push("k"))

    def test_broken_redirect(self):
        self.track("REDIRECT", self.tid)
        self.call("GET", "k")
        self.assertEqual(self.write("CLIENT", "KILL", "ID", self.tid), 1)
        self.write("SET", "k", "1")
        broken = (b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n"
                  % self.tid)
        self.assertEqual(self.sent(), broken)
        self.assertEqual(self.call("CLIENT", "TRACKINGINFO")[b"flags"],
                         [b"on", b"broken_redirect"])
        self.assertIn(b" flags=tR ", self.call("CLIENT", "INFO"))
        self.call("GET", "k")
        self.write("FLUSHALL")
        self.assertEqual(self.sent(), broken)


class LifecycleTests(TrackingTestCase):
    def test_reset_turns_tracking_off(self):
        self.track("BCAST", "PREFIX", "p")
        self.assertEqual(self.info("tracking_clients"), 1)
        self.assertEqual(self.call("RESET"), b"RESET")
        self.assertEqual(self.info("tracking_clients"), 0)
        self.assertEqual(self.info("tracking_total_prefixes"), 0)
        # RESET is back to RESP2: the map is a flat array.
        self.assertEqual(self.call("CLIENT", "TRACKINGINFO")[1], [b"off"])

    def test_disconnect_and_kill(self):
        other = self.connect(resp3=True)
        self.track()
        self.track(client=other)
        self.call("GET", "k")
        self.disconnect((self.proto, self.transport))
        self.assertEqual(self.info("tracking_clients"), 1)
        oid = self.call("CLIENT", "ID", client=other)
        self.write("CLIENT", "KILL", "ID", oid)
        self.assertEqual(self.info("tracking_clients"), 0)
        # Ids of gone clients are dropped with the key, lazily.
        self.write("SET", "k", "1")
        self.assertEqual(self.info("tracking_total_items"), 0)

    def test_off_keeps_nothing_sent(self):
        self.track()
        self.call("GET", "k")
        self.call("CLIENT", "TRACKING", "off")
        self.write("SET", "k", "1")
        self.assertEqual(self.sent(), b"")


class ClusterTests(TrackingTestCase):
    """Per node; a slot leaving the node invalidates its tracked keys
    (rcluster's choice - Redis 7.0 forgets nothing then)."""
    directives = {"cluster_enabled": "yes"}

    def setUp(self):
        super().setUp()
        self.server.router = lambda c, cmd, argv: None   # we serve them all
        self.host = ServerHost(self.server)

    def test_slot_lost_invalidates_its_tracked_keys(self):
        self.track()
        # Same slot (hash tag); a missing key is cached as nil too.
        self.call("MGET", "{u}a", "{u}b", "other")
        self.host.remove_channels_in_slot(keyslot(b"u"))
        self.assertEqual(self.sent(), push("{u}a") + push("{u}b"))
        self.assertEqual(self.info("tracking_total_keys"), 1)
        self.host.remove_channels_in_slot(keyslot(b"u"))
        self.assertEqual(self.sent(), b"")

    def test_keys_deleted_with_the_slot_reach_bcast_clients(self):
        self.track("BCAST")
        self.write("SET", "{u}a", "1")
        self.clock.advance(0)
        self.sent()
        self.host.delete_keys_in_slot(keyslot(b"u"))
        self.clock.advance(0)
        self.assertEqual(self.sent(), push("{u}a"))

"""getNodeByQuery semantics, against a minimal stand-in for the cluster state
(the routing code only needs slot ownership, open slots and cluster health)."""
from twisted.trial.unittest import TestCase

from rcluster.cluster.keyslot import keyslot
from rcluster.cluster.routing import Router, _only_key_is_first_arg
from tests.protocol.helpers import connect, exchange, make_server


class Node:
    def __init__(self, name, port, master=True, replicaof=None):
        self.name = name
        self.ip = "127.0.0.1"
        self.port = port
        self.pport = 0
        self.hostname = ""
        self.is_master = master
        self.replicaof = replicaof


class State:
    def __init__(self, myself, owners):
        self.myself = myself
        self.owners = owners          # slot -> node (others: unbound)
        self.migrating = {}
        self.importing = {}
        self.is_ok = True

    def slot_owner(self, slot):
        return self.owners.get(slot)

    def migrating_to(self, slot):
        return self.migrating.get(slot)

    def importing_from(self, slot):
        return self.importing.get(slot)

    def serves_directly(self, slot):
        return self.is_ok and self.owners.get(slot) is self.myself and \
            slot not in self.migrating


SLOT_FOO = keyslot(b"foo")
SLOT_BAR = keyslot(b"bar")


class RoutingTests(TestCase):
    def setUp(self):
        self.me = Node("me", 7000)
        self.other = Node("other", 7001)
        self.server, _ = make_server(cluster_enabled="yes")
        self.state = State(self.me, {SLOT_FOO: self.me, SLOT_BAR: self.other,
                                     keyslot(b"{foo}x"): self.me})
        self.server.router = Router(self.state, self.server)
        self.proto, self.transport = connect(self.server)

    def send(self, line):
        return exchange(self.proto, self.transport, line)

    def test_local_key_served(self):
        self.assertEqual(self.send(b"SET foo 1\r\n"), b"+OK\r\n")

    def test_moved(self):
        self.assertEqual(self.send(b"GET bar\r\n"),
                         b"-MOVED %d 127.0.0.1:7001\r\n" % SLOT_BAR)

    def test_unbound_slot(self):
        self.assertEqual(self.send(b"GET zzz\r\n"),
                         b"-CLUSTERDOWN Hash slot not served\r\n")

    def test_crossslot(self):
        self.assertEqual(self.send(b"MGET foo bar\r\n"),
                         b"-CROSSSLOT Keys in request don't hash to the same slot\r\n")

    def test_same_slot_multikey(self):
        self.send(b"SET foo 1\r\n")
        self.assertEqual(self.send(b"MGET foo {foo}x\r\n"), b"*2\r\n$1\r\n1\r\n$-1\r\n")

    def test_keyless_commands_not_routed(self):
        self.assertEqual(self.send(b"PING\r\n"), b"+PONG\r\n")

    def test_cluster_down(self):
        self.state.is_ok = False
        self.assertEqual(self.send(b"GET foo\r\n"), b"-CLUSTERDOWN The cluster is down\r\n")
        self.server.settings.cluster_allow_reads_when_down = True
        self.assertEqual(self.send(b"GET foo\r\n"), b"$-1\r\n")
        self.assertEqual(self.send(b"SET foo 1\r\n"),
                         b"-CLUSTERDOWN The cluster is down and only accepts read commands\r\n")

    def test_migrating_ask_and_tryagain(self):
        self.state.migrating[SLOT_FOO] = self.other
        # Key missing here: ask the target.
        self.assertEqual(self.send(b"GET foo\r\n"),
                         b"-ASK %d 127.0.0.1:7001\r\n" % SLOT_FOO)
        self.server.keyspace.set(b"foo", b"1")
        self.assertEqual(self.send(b"GET foo\r\n"), b"$1\r\n1\r\n")
        # Some keys here, some gone: TRYAGAIN.
        self.assertEqual(self.send(b"MGET foo {foo}x\r\n"),
                         b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n")

    def test_importing_needs_asking(self):
        self.state.owners[SLOT_BAR] = self.other
        self.state.importing[SLOT_BAR] = self.other
        self.assertEqual(self.send(b"GET bar\r\n"),
                         b"-MOVED %d 127.0.0.1:7001\r\n" % SLOT_BAR)
        self.server.table.commands["asking"] = _asking_row()
        self.assertEqual(self.send(b"ASKING\r\nGET bar\r\nGET bar\r\n"),
                         b"+OK\r\n$-1\r\n-MOVED %d 127.0.0.1:7001\r\n" % SLOT_BAR)

    def test_exec_routes_whole_transaction(self):
        self.server.table.commands.setdefault("multi", _multi_row())
        self.server.table.commands.setdefault("exec", _exec_row())
        reply = self.send(b"MULTI\r\nGET bar\r\n")
        self.assertEqual(reply, b"+OK\r\n-MOVED %d 127.0.0.1:7001\r\n" % SLOT_BAR)

    def test_readonly_replica_reads(self):
        me = Node("me", 7000, master=False, replicaof=self.other)
        self.state.myself = me
        client = self.proto.client
        self.assertEqual(self.send(b"GET bar\r\n"),
                         b"-MOVED %d 127.0.0.1:7001\r\n" % SLOT_BAR)
        client.readonly = True
        self.assertEqual(self.send(b"GET bar\r\n"), b"$-1\r\n")
        self.assertEqual(self.send(b"SET bar 1\r\n"),
                         b"-MOVED %d 127.0.0.1:7001\r\n" % SLOT_BAR)

    def test_tls_cluster_plain_client_gets_plain_port(self):
        self.other.pport = 6001
        self.server.settings.tls_cluster = True
        self.assertEqual(self.send(b"GET bar\r\n"),
                         b"-MOVED %d 127.0.0.1:6001\r\n" % SLOT_BAR)


class FastPathTests(TestCase):
    """The fast path (one key in argv[1], our slot, not migrating, cluster
    ok) must answer exactly what the full getNodeByQuery logic answers."""

    def setUp(self):
        self.me = Node("me", 7000)
        self.other = Node("other", 7001)
        self.server, _ = make_server(cluster_enabled="yes")
        self.state = State(self.me, {SLOT_FOO: self.me, SLOT_BAR: self.other})
        self.router = Router(self.state, self.server)
        self.client = self.server.new_client()

    def test_single_key_commands(self):
        table = self.server.table
        for name in ("get", "set", "incr", "hset", "lpush", "zadd", "expire",
                     "getdel", "setrange"):
            self.assertTrue(_only_key_is_first_arg(table.get(name)), name)
        for name in ("mget", "mset", "del", "exists", "rename", "smove",
                     "spublish", "ssubscribe", "exec", "zunionstore", "lmpop"):
            self.assertFalse(_only_key_is_first_arg(table.get(name)), name)
        encoding = table.get("object").subcommands["encoding"]   # key in argv[2]
        self.assertFalse(_only_key_is_first_arg(encoding))

    def test_same_answers_as_full_route(self):
        table = self.server.table
        requests = [[b"GET", b"foo"], [b"SET", b"foo", b"1"],
                    [b"GET", b"bar"], [b"INCR", b"bar"], [b"GET", b"zzz"]]
        situations = [dict(), dict(is_ok=False),
                      dict(migrating={SLOT_FOO: self.other}),
                      dict(importing={SLOT_FOO: self.other})]
        for situation in situations:
            for name, value in situation.items():
                setattr(self.state, name, value)
            for argv in requests:
                cmd = table.get(argv[0].decode().lower())
                full = self.router._route(self.client, cmd, argv, False)
                self.assertEqual(self.router(self.client, cmd, argv), full,
                                 (situation, argv))
            self.state.is_ok = True
            self.state.migrating, self.state.importing = {}, {}

    def test_asked_importing_same_answers_as_full_route(self):
        """With ASKING (or RESTORE-ASKING), the importing fast path answers
        what the full route does, in every situation around it."""
        table = self.server.table
        requests = [[b"GET", b"bar"], [b"SET", b"bar", b"1"],
                    [b"GET", b"foo"], [b"GET", b"zzz"], [b"MGET", b"bar"],
                    [b"RESTORE-ASKING", b"bar", b"0", b"x"]]
        replica = Node("replica", 7002, master=False, replicaof=self.other)
        situations = [dict(importing={SLOT_BAR: self.other}),
                      dict(importing={SLOT_BAR: self.other}, is_ok=False),
                      dict(importing={SLOT_BAR: self.other},
                           busy_slots={SLOT_BAR: 1}),
                      dict(importing={SLOT_BAR: self.other},
                           myself=replica),
                      dict(importing={SLOT_FOO: self.other}),
                      dict(importing={keyslot(b"zzz"): self.other}),
                      dict()]
        for situation in situations:
            for name, value in situation.items():
                setattr(self.state, name, value)
            for argv in requests:
                cmd = table.get(argv[0].decode().lower())
                for asking in (True, False):
                    full = self.router._route(
                        self.client, cmd, argv,
                        asking or "asking" in cmd.flags)
                    self.client.asking = asking
                    self.assertEqual(self.router(self.client, cmd, argv),
                                     full, (situation, argv, asking))
            self.state.is_ok = True
            self.state.myself = self.me
            self.state.migrating, self.state.importing = {}, {}
            self.state.busy_slots = {}
        # And it is the fast path that answers.
        self.state.importing = {SLOT_BAR: self.other}
        self.router._route = None           # any full route would fail
        self.client.asking = True
        self.assertIsNone(self.router(self.client, table.get("get"),
                                      [b"GET", b"bar"]))
        self.assertIsNone(self.router(self.client,
                                      table.get("restore-asking"),
                                      [b"RESTORE-ASKING", b"bar", b"0",
                                       b"x"]))

    def test_fast_path_taken_and_asking_consumed(self):
        cmd = self.server.table.get("get")
        self.router._route = None           # any full route would fail
        self.client.asking = True
        self.assertIsNone(self.router(self.client, cmd, [b"GET", b"foo"]))
        self.assertFalse(self.client.asking)


def _asking_row():
    from rcluster.commands.table import Command
    from rcluster.resp.codec import OK

    def asking(c, argv):
        c.asking = True
        return OK
    return Command("asking", asking, 1, frozenset({"fast"}))


def _multi_row():
    from rcluster.commands.table import Command
    from rcluster.resp.codec import OK

    def multi(c, argv):
        c.multi = []
        return OK
    return Command("multi", multi, 1, frozenset({"no_multi"}))


def _exec_row():
    from rcluster.commands.table import Command

    def exec_(c, argv):
        queued, c.multi = c.multi, None
        return [c.server.call(c, cmd, a, send=False) for cmd, a in queued]
    return Command("exec", exec_, 1, frozenset({"no_multi"}))

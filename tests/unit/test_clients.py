"""CLIENT subcommands (rcluster/commands/clients.py) through a Server on a
fake clock: replies and error texts of Redis 7.0.15."""
import re

from tests.protocol.helpers import ServerTestCase, request


class IdentityTests(ServerTestCase):
    def test_id_and_names(self):
        self.assertEqual(self.call("CLIENT", "ID"), 1)
        self.assertIsNone(self.call("CLIENT", "GETNAME"))
        self.assertEqual(self.call("CLIENT", "SETNAME", "worker-1"), b"OK")
        self.assertEqual(self.call("CLIENT", "GETNAME"), b"worker-1")
        self.assertEqual(self.call("CLIENT", "SETNAME", "a b"),
                         "ERR Client names cannot contain spaces, newlines or "
                         "special characters.")
        self.assertEqual(self.call("CLIENT", "SETNAME", ""), b"OK")
        self.assertIsNone(self.call("CLIENT", "GETNAME"))

    def test_info_line(self):
        self.assertEqual(
            self.raw("CLIENT", "INFO"),
            b"$253\r\nid=1 addr=127.0.0.1:40000 laddr=127.0.0.1:6379 fd=-1 "
            b"name= age=0 idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 "
            b"qbuf=0 qbuf-free=0 argv-mem=10 multi-mem=0 rbs=0 rbp=0 obl=0 "
            b"oll=0 omem=0 tot-mem=10 events=r cmd=client|info user=default "
            b"redir=-1 resp=2\n\r\n")

    def test_info_resp3_is_verbatim(self):
        self.raw("HELLO", "3")
        self.assertTrue(self.raw("CLIENT", "INFO").startswith(b"=257\r\ntxt:id=1 "))

    def test_list(self):
        other = self.connect()
        self.call("CLIENT", "SETNAME", "sub", client=other)
        self.raw("SUBSCRIBE", "a", "b", client=other)
        self.call("GET", "x")
        self.clock.advance(5)
        lines = self.call("CLIENT", "LIST").decode().splitlines()
        self.assertEqual(len(lines), 2)
        fields = dict(item.split("=", 1) for item in lines[1].split(" "))
        self.assertEqual(
            {k: fields[k] for k in ("id", "name", "age", "idle", "flags",
                                    "sub", "cmd")},
            {"id": "2", "name": "sub", "age": "5", "idle": "5", "flags": "P",
             "sub": "2", "cmd": "subscribe"})
        self.assertIn(" cmd=client|list ", lines[0])

    def test_list_filters(self):
        self.connect()
        subscriber = self.connect()
        self.call("SUBSCRIBE", "a", client=subscriber)
        ids = lambda *args: re.findall(  # noqa: E731
            rb"^id=(\d+)", self.call("CLIENT", "LIST", *args), re.M)
        self.assertEqual(ids("TYPE", "pubsub"), [b"3"])
        self.assertEqual(ids("type", "NORMAL"), [b"1", b"2"])
        self.assertEqual(ids("TYPE", "replica"), [])
        self.assertEqual(ids("ID", "3", "99", "1"), [b"3", b"1"])
        self.assertEqual(self.call("CLIENT", "LIST", "TYPE", "foo"),
                         "ERR Unknown client type 'foo'")
        self.assertEqual(self.call("CLIENT", "LIST", "ID", "1", "a"),
                         "ERR Invalid client ID")
        self.assertEqual(self.call("CLIENT", "LIST", "ID"), "ERR syntax error")

    def test_flags(self):
        self.call("CLIENT", "NO-EVICT", "on")
        self.call("CLIENT", "NO-TOUCH", "on")
        self.call("MULTI")
        self.assertIn(b" flags=xeT ", self.call("CLIENT", "LIST",
                                                client=self.connect()))
        self.assertEqual(self.call("CLIENT", "NO-EVICT", "maybe",
                                   client=self.connect()), "ERR syntax error")


class KillTests(ServerTestCase):
    def test_old_form(self):
        victim_proto, victim = self.connect()
        self.assertEqual(self.call("CLIENT", "KILL", "127.0.0.1:40002"), b"OK")
        self.assertTrue(victim.disconnecting)
        self.assertEqual(list(self.server.clients), [1])
        self.assertEqual(self.call("CLIENT", "KILL", "1.2.3.4:5"),
                         "ERR No such client")

    def test_filters(self):
        first = self.connect()
        second = self.connect()
        self.call("SUBSCRIBE", "x", client=second)
        self.assertEqual(self.call("CLIENT", "KILL", "TYPE", "pubsub"), 1)
        self.assertTrue(second[1].disconnecting)
        self.assertEqual(self.call("CLIENT", "KILL", "ID", "2", "SKIPME",
                                   "yes"), 1)
        self.assertTrue(first[1].disconnecting)
        self.assertEqual(self.call("CLIENT", "KILL", "USER", "default"), 0)
        self.assertEqual(self.call("CLIENT", "KILL", "LADDR",
                                   "127.0.0.1:6379", "ADDR", "x"), 0)

    def test_skipme_no_closes_after_the_reply(self):
        self.assertEqual(self.raw("CLIENT", "KILL", "ID", "1", "SKIPME", "no"),
                         b":1\r\n")
        self.assertTrue(self.transport.disconnecting)

    def test_errors(self):
        for args, error in [
                (("ID", "0"), "ERR client-id should be greater than 0"),
                (("ID", "abc"), "ERR client-id should be greater than 0"),
                (("TYPE", "foo"), "ERR Unknown client type 'foo'"),
                (("USER", "foo"), "ERR No such user 'foo'"),
                (("SKIPME", "maybe"), "ERR syntax error"),
                (("ID", "1", "SKIPME"), "ERR syntax error"),
                (("FOO", "bar"), "ERR syntax error")]:
            self.assertEqual(self.call("CLIENT", "KILL", *args), error)


class PauseTests(ServerTestCase):
    def test_pause_write_postpones_writes_not_reads(self):
        writer_proto, writer = self.connect()
        reader = self.connect()
        self.assertEqual(self.call("CLIENT", "PAUSE", "10000", "WRITE"), b"OK")
        writer.clear()
        writer_proto.dataReceived(request("SET", "k", "v") + request("GET", "k"))
        self.assertEqual(writer.value(), b"")
        self.assertIsNone(self.call("GET", "k", client=reader))
        self.assertEqual(self.call("CLIENT", "UNPAUSE"), b"OK")
        self.assertEqual(writer.value(), b"+OK\r\n$1\r\nv\r\n")

    def test_pause_ends_on_timeout(self):
        writer_proto, writer = self.connect()
        self.assertEqual(self.call("CLIENT", "PAUSE", "500"), b"OK")
        writer.clear()
        writer_proto.dataReceived(request("INCR", "n") + request("INCR", "n"))
        self.clock.advance(0.4)
        self.assertEqual(writer.value(), b"")
        self.clock.advance(0.2)
        self.assertEqual(writer.value(), b":1\r\n:2\r\n")

    def test_pause_all_holds_reads(self):
        reader_proto, reader = self.connect()
        self.call("CLIENT", "PAUSE", "1000", "ALL")
        reader.clear()
        reader_proto.dataReceived(request("PING"))
        self.assertEqual(reader.value(), b"")
        self.clock.advance(1)
        self.assertEqual(reader.value(), b"+PONG\r\n")

    def test_errors(self):
        self.assertEqual(self.call("CLIENT", "PAUSE", "abc"),
                         "ERR timeout is not an integer or out of range")
        self.assertEqual(self.call("CLIENT", "PAUSE", "-1"),
                         "ERR timeout is negative")
        self.assertEqual(self.call("CLIENT", "PAUSE", "abc", "foo"),
                         "ERR CLIENT PAUSE mode must be WRITE or ALL")
        self.assertEqual(self.call("CLIENT", "PAUSE", "1", "all", "x"),
                         "ERR unknown subcommand or wrong number of arguments "
                         "for 'PAUSE'. Try CLIENT HELP.")


class ReplyTests(ServerTestCase):
    def test_off_on_skip(self):
        self.assertEqual(self.raw("CLIENT", "REPLY", "OFF"), b"")
        self.assertEqual(self.raw("SET", "a", "1"), b"")
        self.assertEqual(self.raw("CLIENT", "REPLY", "ON"), b"+OK\r\n")
        self.assertEqual(self.raw("CLIENT", "REPLY", "SKIP"), b"")
        self.assertEqual(self.raw("GET", "a"), b"")
        self.assertEqual(self.raw("GET", "a"), b"$1\r\n1\r\n")
        self.assertEqual(self.call("CLIENT", "REPLY", "maybe"),
                         "ERR syntax error")


class UnblockTests(ServerTestCase):
    def test_unblock(self):
        blocked_proto, blocked = self.connect()
        blocked_proto.dataReceived(request("BLPOP", "q", "0"))
        self.assertEqual(self.call("CLIENT", "UNBLOCK", "2"), 1)
        self.assertEqual(blocked.value(), b"*-1\r\n")
        blocked.clear()
        blocked_proto.dataReceived(request("BLPOP", "q", "0"))
        self.assertEqual(self.call("CLIENT", "UNBLOCK", "2", "ERROR"), 1)
        self.assertEqual(blocked.value(), b"-UNBLOCKED client unblocked via "
                                          b"CLIENT UNBLOCK\r\n")
        self.assertEqual(self.call("CLIENT", "UNBLOCK", "2"), 0)
        self.assertEqual(self.call("CLIENT", "UNBLOCK", "99"), 0)

    def test_errors(self):
        self.assertEqual(self.call("CLIENT", "UNBLOCK", "1", "foo"),
                         "ERR CLIENT UNBLOCK reason should be TIMEOUT or "
                         "ERROR")
        self.assertEqual(self.call("CLIENT", "UNBLOCK", "abc"),
                         "ERR value is not an integer or out of range")


class TrackingTests(ServerTestCase):
    def test_tracking_is_off(self):
        # Tracking itself: tests/unit/test_tracking.py.
        self.assertEqual(self.call("CLIENT", "TRACKING", "off"), b"OK")
        self.assertEqual(self.call("CLIENT", "GETREDIR"), -1)
        self.assertEqual(self.call("CLIENT", "CACHING", "yes"),
                         "ERR CLIENT CACHING can be called only when the "
                         "client is in tracking mode with OPTIN or OPTOUT "
                         "mode enabled")
        self.assertEqual(self.raw("CLIENT", "TRACKINGINFO"),
                         b"*6\r\n$5\r\nflags\r\n*1\r\n$3\r\noff\r\n$8\r\n"
                         b"redirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n")


class HelpTests(ServerTestCase):
    def test_help_and_unknown(self):
        help_lines = self.call("CLIENT", "HELP")
        self.assertEqual(help_lines[0], b"CLIENT <subcommand> [<arg> [value] "
                                        b"[opt] ...]. Subcommands are:")
        self.assertEqual(help_lines[-2:], [b"HELP", b"    Prints this help."])
        self.assertEqual(self.call("CLIENT", "FOO"),
                         "ERR unknown subcommand 'FOO'. Try CLIENT HELP.")
        self.assertEqual(self.call("CLIENT", "ID", "x"),
                         "ERR wrong number of arguments for 'client|id' "
                         "command")



class NoTouchTests(ServerTestCase):
    """CLIENT NO-TOUCH (Redis 7.2): reads leave the LRU clock alone, TOUCH
    still touches, and so does another client."""
    directives = {"maxmemory-policy": "allkeys-lru"}

    def idle(self):
        return self.call("OBJECT", "IDLETIME", "k")

    def test_reads_leave_access_time(self):
        self.call("SET", "k", "v")
        self.clock.advance(30)
        self.call("CLIENT", "NO-TOUCH", "on")
        self.assertEqual(self.call("GET", "k"), b"v")
        self.call("MULTI")
        self.call("GET", "k")
        self.call("EXEC")
        self.assertGreaterEqual(self.idle(), 30)
        self.call("TOUCH", "k")
        self.assertLess(self.idle(), 2)
        self.clock.advance(30)
        self.call("CLIENT", "NO-TOUCH", "off")
        self.call("GET", "k")
        self.assertLess(self.idle(), 2)

    def test_other_clients_still_touch(self):
        self.call("SET", "k", "v")
        self.call("CLIENT", "NO-TOUCH", "on")
        self.clock.advance(30)
        self.call("GET", "k", client=self.connect())
        self.assertLess(self.idle(), 2)

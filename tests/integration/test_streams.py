"""Streams against a real node, driven by redis-py: every command and
option runs against rcluster AND redis-server 7.0 in the same test, and
the replies must be equal (the expectations are redis-server's answers,
not literals).  Entry IDs are explicit so replies compare; ``*`` IDs are
compared by shape; clock-dependent fields (idle times, delivery and seen
times) are masked.  Blocking XREAD / XREADGROUP scenarios run on each
server and their event logs are compared: wake-up order across several
blocked clients, timeouts, keys deleted or replaced and groups destroyed
while clients wait.
"""
import re
import threading
import time

import redis
from twisted.trial.unittest import TestCase

from tests.integration.harness import have, start_node

ID_SHAPE = re.compile(rb"\d+-\d+\Z")


def _masked(value, keys=(b"idle", b"seen-time")):
    """Replace clock-dependent numbers in XINFO/XPENDING replies."""
    if isinstance(value, dict):
        return {k: ("<t>" if k in keys else _masked(v, keys))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(v, keys) for v in value]
    return value


def _flat_masked(value, keys=(b"idle", b"seen-time")):
    """RESP2 flat maps: the value after a clock-dependent name is masked."""
    if isinstance(value, dict):
        return _masked(value, keys)
    if not isinstance(value, list):
        return value
    out = []
    for i, item in enumerate(value):
        if i and value[i - 1] in keys:
            out.append("<t>")
        else:
            out.append(_flat_masked(item, keys))
    return out


def _sorted_subcommands(reply):
    """COMMAND INFO of a container: subcommands in a fixed order (Redis
    lists them in its dict's order)."""
    return [row[:9] + [sorted(row[9])] + row[10:] for row in reply]


def _pending_masked(rows):
    """XPENDING extended rows: [id, consumer, idle, count] -> idle masked."""
    return [[r[0], r[1], "<t>", r[3]] if isinstance(r, list) and len(r) == 4
            else r for r in rows]


def _flat(value):
    """Maps as flat lists (however the client library delivered them)."""
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in (k, _flat(v))]
    if isinstance(value, (list, tuple)):
        return [_flat(v) for v in value]
    return value


def _full_masked(info):
    """XINFO STREAM FULL: delivery / seen times masked."""
    info = _flat(info)
    groups = info[info.index(b"groups") + 1]
    for group in groups:
        pending = group[group.index(b"pending") + 1]
        for row in pending:
            row[2] = "<t>"
        for consumer in group[group.index(b"consumers") + 1]:
            consumer[consumer.index(b"seen-time") + 1] = "<t>"
            for row in consumer[consumer.index(b"pending") + 1]:
                row[1] = "<t>"
    return info


def _raw_client(node, **kwargs):
    """A redis-py client without reply parsers: the server's own replies."""
    client = node.client(**kwargs)
    client.response_callbacks.clear()
    return client


class StreamsAgainstRedis(TestCase):
    """Each test starts an rcluster node and a redis-server node."""

    def setUp(self):
        if not have("redis-server"):
            self.skipTest("redis-server not installed")
        self.nodes = [start_node(self),
                      start_node(self, binary="redis-server")]
        self.clients = []
        for node in self.nodes:
            client = _raw_client(node)
            self.addCleanup(client.close)
            self.clients.append(client)

    def raw(self, client, *args):
        try:
            return client.execute_command(*args, NEVER_DECODE=True)
        except redis.ResponseError as err:
            return ("error", str(err))

    def both(self, *args, mask=None):
        """Run args on both servers; the replies must be equal."""
        replies = [self.raw(c, *args) for c in self.clients]
        if mask is not None:
            replies = [mask(r) if not isinstance(r, tuple) else r
                       for r in replies]
        self.assertEqual(replies[0], replies[1], args)
        return replies[0]

    def script(self, text):
        for line in text.strip().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                self.both(*line.split())

    # -- XADD, ranges, XLEN, XDEL, XTRIM, XSETID -----------------------------
    def test_entries(self):
        self.script("""
            XADD s 1-1 a 1 b 2
            XADD s 1-2 a 3 b 4
            XADD s 1-* c 5
            XADD s 2 d 6
            XADD s 0-* d 6
            XADD s 1-1 x y
            XADD s 0-0 x y
            XADD t 0-* x y
            XADD s NOMKSTREAM 3-0 a b
            XADD nokey NOMKSTREAM 3-0 a b
            EXISTS nokey
            XADD s MAXLEN 3
            XADD s a
            XADD s 20-0 a b c
            XADD s MAXLEN = 3 4-0 f v
            XADD s MAXLEN x 5-0 f v
            XADD s MAXLEN -1 5-0 f v
            XADD s MAXLEN 1 MINID 1 5-0 f v
            XADD s LIMIT 5 5-0 f v
            XADD s MAXLEN 5 LIMIT 5 5-0 f v
            XADD s 99999999999999999999-1 a b
            XADD s x-1 a b
            XLEN s
            XLEN nokey
            XRANGE s - +
            XRANGE s (1-1 +
            XRANGE s (1-1 (4-0
            XRANGE s 1 2
            XREVRANGE s + - COUNT 2
            XREVRANGE s (4-0 -
            XRANGE s - + COUNT 0
            XRANGE s - + COUNT -1
            XRANGE s - + COUNT x
            XRANGE s - + FOO 1
            XRANGE s (18446744073709551615-18446744073709551615 +
            XRANGE s - (0-0
            XRANGE s x +
            XRANGE s (- +
            XRANGE nokey - +
            XDEL s 2-0 9-9
            XDEL s 1-1x
            XDEL nokey 1-1
            XLEN s
            XTRIM s MAXLEN 1
            XRANGE s - +
            XTRIM s
            XTRIM s FOO 1
            XTRIM s LIMIT 5 MAXLEN 1
            XTRIM s MAXLEN 1 LIMIT 5
            XTRIM s MAXLEN ~ 1 LIMIT -1
            XTRIM s MINID 5-0
            XTRIM nokey MAXLEN 1
            XLEN s
            XSETID s 3-0
            XSETID s 10-0 ENTRIESADDED 100 MAXDELETEDID 5-0
            XSETID s 10-0 ENTRIESADDED 0
            XSETID s 10-0 ENTRIESADDED -1
            XSETID s 10-0 MAXDELETEDID 11-0
            XSETID s 10-0 FOO
            XSETID nokey 1-0
            XINFO STREAM s
            SET str x
            XADD str 1-0 a b
            XLEN str
            XRANGE str - +
            XTRIM str MAXLEN 0
            TYPE s
            OBJECT ENCODING s
        """)
        shape = [self.raw(c, "XADD", "auto", "*", "f", "v")
                 for c in self.clients]
        self.assertTrue(all(ID_SHAPE.match(x) for x in shape), shape)
        shape = [self.raw(c, "XADD", "auto", "MAXLEN", "~", 5, "*", "f", "v")
                 for c in self.clients]
        self.assertTrue(all(ID_SHAPE.match(x) for x in shape), shape)

    def test_trimming_nodes(self):
        """Exact and approximate trims on many entries of mixed shapes:
        where nodes are cut decides what ~ removes (and radix-tree-keys)."""
        for i in range(1, 700):
            fields = ["f", str(i)] if i % 3 else ["g", "x" * (i % 90),
                                                   "h", "-%d" % i]
            self.both("XADD", "s", "%d-%d" % (i // 2, i % 2), *fields)
        self.both("XINFO", "STREAM", "s")
        for cmd in ("XTRIM s MAXLEN ~ 550", "XTRIM s MAXLEN ~ 10 LIMIT 150",
                    "XDEL s 200-0 200-1 201-0 260-1",
                    "XTRIM s MINID ~ 210-0", "XTRIM s MINID = 215-1",
                    "XADD s MAXLEN ~ 300 1000-0 f v",
                    "XADD s MINID ~ 330 1001-0 f v",
                    "XTRIM s MAXLEN = 100", "XINFO STREAM s",
                    "XINFO STREAM s FULL COUNT 3"):
            self.both(*cmd.split())

    # -- groups ---------------------------------------------------------------
    def test_groups(self):
        self.script("""
            XGROUP CREATE s g $
            XGROUP CREATE s g $ MKSTREAM
            XGROUP CREATE s g $ MKSTREAM
            XGROUP CREATE s g2 0 ENTRIESREAD 5
            XGROUP CREATE s g3 0 ENTRIESREAD -2
            XGROUP CREATE s g3 0 FOO
            XGROUP CREATE s g3 +
            XGROUP CREATE s g4 1-1
            XADD s 1-1 a 1
            XADD s 1-2 a 2
            XADD s 1-3 a 3
            XADD s 1-4 b 4
            XINFO GROUPS s
            XREADGROUP GROUP g alice COUNT 1 STREAMS s >
            XREADGROUP GROUP g bob STREAMS s >
            XREADGROUP GROUP g bob STREAMS s >
            XREADGROUP GROUP g bob STREAMS s 0
            XREADGROUP GROUP g alice STREAMS s 0-0
            XREADGROUP GROUP g alice STREAMS s $
            XREADGROUP GROUP nog alice STREAMS s >
            XREADGROUP GROUP g alice STREAMS nokey >
            XREADGROUP GROUP g alice STREAMS s > x
            XREADGROUP g alice STREAMS s >
            XREAD GROUP g alice STREAMS s >
            XREAD NOACK STREAMS s 0
            XREAD STREAMS s >
            XREAD STREAMS s 0
            XREAD COUNT 2 STREAMS s s 0 1-2
            XREAD STREAMS s $
            XREAD STREAMS s nokey 1-4 0
            XREAD BLOCK -1 STREAMS s 0
            XREAD BLOCK x STREAMS s 0
            XREAD COUNT x STREAMS s 0
            XINFO GROUPS s
            XPENDING s g
            XPENDING s g - + x
            XPENDING s g - +
            XPENDING s nog
            XPENDING nokey g
            XPENDING s g IDLE x - + 10
            XPENDING s g IDLE 0 - +
            XPENDING s g IDLE 100000 - + 10
            XPENDING s g - + 10 nobody
            XACK s g 1-1 1-2 9-9
            XACK s g x
            XACK s nog 1-1
            XACK nokey g 1-1
            XPENDING s g
            XDEL s 1-3
            XINFO GROUPS s
            XREADGROUP GROUP g bob STREAMS s 0
            XCLAIM s g carol 0 1-3 1-4 JUSTID
            XCLAIM s g carol 0 1-4 RETRYCOUNT 5
            XCLAIM s g carol 0 1-1 FORCE JUSTID
            XCLAIM s g carol x 1-1
            XCLAIM s nog carol 0 1-1
            XCLAIM s g carol 0 1-1 BAD
            XCLAIM s g carol 0 1-1 IDLE x
            XCLAIM s g carol 0 1-1 TIME x
            XCLAIM s g carol 0 1-1 RETRYCOUNT x
            XCLAIM s g carol 0 1-1 LASTID x
            XCLAIM s g carol 100000 1-1 JUSTID
            XCLAIM s g carol 0 1-1 RETRYCOUNT 7 JUSTID
            XCLAIM s g dave 0 1-1 IDLE 1000 RETRYCOUNT 7 LASTID 5-0 JUSTID
            XCLAIM s g dave 0 1-1 TIME 1 JUSTID
            XINFO GROUPS s
            XADD s 1-5 a 5
            XADD s 1-6 a 6
            XREADGROUP GROUP g2 eve NOACK STREAMS s >
            XINFO GROUPS s
            XAUTOCLAIM s g frank 0 0 COUNT 1
            XAUTOCLAIM s g frank 0 0 COUNT 10 JUSTID
            XAUTOCLAIM s g frank 0 (1-1
            XAUTOCLAIM s g frank 100000 0
            XAUTOCLAIM s g frank 0 0 COUNT 0
            XAUTOCLAIM s g frank 0 0 COUNT x
            XAUTOCLAIM s g frank x 0
            XAUTOCLAIM s nog frank 0 0
            XAUTOCLAIM s g frank 0 0 FOO
            XREADGROUP GROUP g4 zed STREAMS s >
            XDEL s 1-5 1-6
            XAUTOCLAIM s g4 frank 0 0
            XPENDING s g4
            XINFO CONSUMERS s nog
            XINFO CONSUMERS nokey g
            XGROUP CREATECONSUMER s g newc
            XGROUP CREATECONSUMER s g newc
            XGROUP CREATECONSUMER s nog newc
            XGROUP DELCONSUMER s g frank
            XGROUP DELCONSUMER s g nobody
            XGROUP DESTROY s g2
            XGROUP DESTROY s g2
            XGROUP DESTROY nokey g
            XGROUP SETID s g 0
            XGROUP SETID s g $ ENTRIESREAD 3
            XGROUP SETID s nog 0
            XGROUP SETID nokey g 0
            XGROUP SETID s g 0 ENTRIESREAD
            XGROUP SETID s g 0 ENTRIESREAD x
            XGROUP FOO s g
            XGROUP HELP
            XINFO HELP
            XINFO FOO s
            XINFO STREAM s FULL x
            XINFO STREAM s FULL COUNT x
            XINFO STREAM s FOO
            XINFO STREAM nokey
            XINFO GROUPS s
            XINFO STREAM s
        """)
        self.both("XPENDING", "s", "g", "-", "+", 10, mask=_pending_masked)
        self.both("XPENDING", "s", "g", "IDLE", 0, "(1-1", "+", 10, "carol",
                  mask=_pending_masked)
        self.both("XINFO", "CONSUMERS", "s", "g", mask=_flat_masked)
        self.both("XINFO", "STREAM", "s", "FULL", mask=_full_masked)
        self.both("XINFO", "STREAM", "s", "FULL", "COUNT", 1,
                  mask=_full_masked)
        self.both("COPY", "s", "copy")
        self.both("XINFO", "STREAM", "copy", "FULL", mask=_full_masked)

    def test_resp3_and_command_info(self):
        resp3 = []
        for node in self.nodes:
            client = _raw_client(node, protocol=3)
            self.addCleanup(client.close)
            resp3.append(client)
        for client in resp3:
            client.execute_command("XADD", "s", "1-0", "f", "v")
            client.execute_command("XGROUP", "CREATE", "s", "g", "0")
        for args in (("XREAD", "STREAMS", "s", "0"),
                     ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"),
                     ("XREAD", "STREAMS", "s", "$"),
                     ("XINFO", "STREAM", "s"), ("XINFO", "GROUPS", "s"),
                     ("XPENDING", "s", "g"), ("XRANGE", "s", "-", "+"),
                     ("XAUTOCLAIM", "s", "g", "d", 0, 0, "JUSTID")):
            replies = [c.execute_command(*args, NEVER_DECODE=True)
                       for c in resp3]
            self.assertEqual(replies[0], replies[1], args)
        for name in ("xadd", "xrange", "xrevrange", "xlen", "xdel", "xtrim",
                     "xsetid", "xread", "xreadgroup", "xack", "xpending",
                     "xclaim", "xautoclaim", "xgroup", "xinfo"):
            self.both("COMMAND", "INFO", name, mask=_sorted_subcommands)
        self.both("COMMAND", "GETKEYS", "XREAD", "COUNT", 2, "STREAMS", "a",
                  "b", "0", "0")
        self.both("COMMAND", "GETKEYS", "XREADGROUP", "GROUP", "g", "c",
                  "STREAMS", "a", ">")

    # -- blocking -------------------------------------------------------------
    def blocked(self, node, count):
        """Until node reports count blocked clients."""
        client = node.client()
        try:
            deadline = time.monotonic() + 5
            while client.info("clients")["blocked_clients"] != count:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.01)
        finally:
            client.close()

    def start(self, node, *args):
        """args on a new connection in a thread; returns a join()."""
        client = _raw_client(node)
        result = []

        def run():
            try:
                result.append(client.execute_command(*args,
                                                     NEVER_DECODE=True))
            except redis.ResponseError as err:
                result.append(("error", str(err)))
            finally:
                client.close()
        thread = threading.Thread(target=run, daemon=True)
        thread.start()

        def join():
            thread.join(10)
            self.assertFalse(thread.is_alive(), args)
            return result[0]
        return join

    def on_each(self, scenario):
        """Run scenario(node, control client) on both; logs must match."""
        logs = []
        for node, client in zip(self.nodes, self.clients):
            client.flushall()
            log = []
            scenario(node, client, log)
            logs.append(log)
        self.assertEqual(logs[0], logs[1])
        return logs[0]

    def test_blocking_wakeups(self):
        def xread_order(node, r, log):
            joins = []
            for n in range(3):
                joins.append(self.start(node, "XREAD", "BLOCK", 0, "STREAMS",
                                        "s", "$"))
                self.blocked(node, n + 1)
            r.xadd("s", {"f": "v"}, id="1-0")
            log += [j() for j in joins]

        def xreadgroup_order(node, r, log):
            r.xgroup_create("s", "g", "$", mkstream=True)
            joins = []
            for n, name in enumerate(("a", "b", "c")):
                joins.append(self.start(node, "XREADGROUP", "GROUP", "g",
                                        name, "COUNT", 5, "BLOCK", 0,
                                        "STREAMS", "s", ">"))
                self.blocked(node, n + 1)
            r.xadd("s", {"f": "1"}, id="1-0")
            log.append(joins[0]())
            r.xadd("s", {"f": "2"}, id="2-0")
            log.append(joins[1]())
            pipe = r.pipeline()
            pipe.xadd("s", {"f": "3"}, id="3-0")
            pipe.xadd("s", {"f": "4"}, id="4-0")
            pipe.execute()
            log.append(joins[2]())
            log.append(self.raw(r, "XPENDING", "s", "g"))

        def timeouts(node, r, log):
            log.append(self.start(node, "XREAD", "BLOCK", 50, "STREAMS", "s",
                                  "$")())
            r.xgroup_create("s", "g", "$", mkstream=True)
            log.append(self.start(node, "XREADGROUP", "GROUP", "g", "c",
                                  "BLOCK", 50, "STREAMS", "s", ">")())
            log.append(self.raw(r, "XINFO", "CONSUMERS", "s", "g"))

        def deleted_and_replaced(node, r, log):
            r.xgroup_create("s", "g", "$", mkstream=True)
            reader = self.start(node, "XREAD", "BLOCK", 0, "STREAMS", "s",
                                "$")
            self.blocked(node, 1)
            grouped = self.start(node, "XREADGROUP", "GROUP", "g", "c",
                                 "BLOCK", 0, "STREAMS", "s", ">")
            self.blocked(node, 2)
            r.delete("s")
            log.append(grouped())
            self.blocked(node, 1)               # XREAD keeps waiting
            r.xadd("s", {"f": "v"}, id="5-0")
            log.append(reader())
            r.xgroup_create("s", "g", "$")
            reader = self.start(node, "XREAD", "BLOCK", 0, "STREAMS", "s",
                                "$")
            self.blocked(node, 1)
            grouped = self.start(node, "XREADGROUP", "GROUP", "g", "c",
                                 "BLOCK", 0, "STREAMS", "s", ">")
            self.blocked(node, 2)
            r.set("s", "a string now")
            log.append(grouped())
            self.blocked(node, 1)
            r.delete("s")
            r.xadd("s", {"f": "v"}, id="1-0")    # below the $ it waits for
            r.xadd("s", {"f": "w"}, id="6-0")
            log.append(reader())

        def group_destroyed(node, r, log):
            r.xgroup_create("s", "g", "$", mkstream=True)
            joins = [self.start(node, "XREADGROUP", "GROUP", "g", "c",
                                "BLOCK", 0, "STREAMS", "s", ">")]
            self.blocked(node, 1)
            joins.append(self.start(node, "XREADGROUP", "GROUP", "g", "d",
                                    "NOACK", "BLOCK", 0, "STREAMS", "s",
                                    ">"))
            self.blocked(node, 2)
            r.xgroup_destroy("s", "g")
            log += [j() for j in joins]

        def flushed(node, r, log):
            r.xgroup_create("s", "g", "$", mkstream=True)
            reader = self.start(node, "XREAD", "BLOCK", 0, "STREAMS", "s",
                                "$")
            self.blocked(node, 1)
            grouped = self.start(node, "XREADGROUP", "GROUP", "g", "c",
                                 "BLOCK", 0, "STREAMS", "s", ">")
            self.blocked(node, 2)
            r.flushall()
            log.append(grouped())
            self.blocked(node, 1)
            r.xadd("s", {"f": "v"}, id="1-0")
            log.append(reader())

        for scenario in (xread_order, xreadgroup_order, timeouts,
                         deleted_and_replaced, group_destroyed, flushed):
            log = self.on_each(scenario)
            self.assertTrue(log, scenario.__name__)

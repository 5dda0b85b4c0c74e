"""The append-only file (persistence/aof.py, manifest.py), sans-IO where it
can be: manifest text, RESP encoding and parsing, loading (truncated
tails, corrupt files), rewriting, and group commit holding replies until
the fsync - on a fake clock, in a temporary directory."""
import os
import shutil
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from rcluster import eviction
from rcluster.persistence import aof as aofmod
from rcluster.persistence.aof import (Aof, AofFormatError, AofLoadError,
                                      CommandParser, CommandWriter,
                                      encode_command)
from rcluster.persistence.manifest import Manifest, ManifestError
from tests.protocol.helpers import (NOW, connect, exchange, make_server,
                                    parse, request)


class ManifestTests(TestCase):
    def test_format_and_parse(self):
        am = Manifest()
        base = am.new_base("appendonly.aof", rdb=True)
        incr = am.new_incr("appendonly.aof")
        self.assertEqual(base, "appendonly.aof.1.base.rdb")
        self.assertEqual(incr, "appendonly.aof.1.incr.aof")
        text = am.format()
        self.assertEqual(text,
                         b"file appendonly.aof.1.base.rdb seq 1 type b\n"
                         b"file appendonly.aof.1.incr.aof seq 1 type i\n")
        again = Manifest.parse(text)
        self.assertEqual(again.format(), text)
        self.assertEqual((again.base_seq, again.incr_seq), (1, 1))

    def test_rewrite_moves_to_history(self):
        am = Manifest()
        am.new_base("a", rdb=False)
        am.new_incr("a")
        am.new_incr("a")
        am.new_base("a", rdb=True)
        am.mark_rewritten_incrs(keep_last=True)
        self.assertEqual([i.name for i in am.history],
                         ["a.1.incr.aof", "a.1.base.aof"])
        self.assertEqual([i.name for i in am.incrs], ["a.2.incr.aof"])
        self.assertEqual(am.base.name, "a.2.base.rdb")
        self.assertIn(b"file a.1.base.aof seq 1 type h\n", am.format())

    def test_keys_in_any_order_and_comments(self):
        am = Manifest.parse(b"# a comment\ntype b seq 3 file x.3.base.rdb\n"
                            b"file x.7.incr.aof seq 7 type i extra 1\n")
        self.assertEqual(am.base.name, "x.3.base.rdb")
        self.assertEqual(am.incr_seq, 7)

    def test_quoted_names(self):
        am = Manifest()
        am.new_incr("my file")
        text = am.format()
        self.assertEqual(text, b'file "my file.1.incr.aof" seq 1 type i\n')
        self.assertEqual(Manifest.parse(text).incrs[0].name,
                         "my file.1.incr.aof")

    def test_errors(self):
        cases = [
            (b"", "Found an empty AOF manifest"),
            (b"file a seq 1\n", "Invalid AOF manifest file format"),
            (b"file a/b seq 1 type b\n",
             "File can't be a path, just a filename"),
            (b"file a seq 1 type b\nfile b seq 2 type b\n",
             "Found duplicate base file information"),
            (b"file a seq 2 type i\nfile b seq 2 type i\n",
             "Found a non-monotonic sequence number"),
            (b"file a seq 1 type x\n", "Unknown AOF file type"),
            (b"file a seq 0 type i\n", "Invalid AOF manifest file format"),
            (b"file a seq 1 type i", "The AOF manifest file contains too "
                                     "long line"),
        ]
        for text, reason in cases:
            with self.assertRaises(ManifestError) as ctx:
                Manifest.parse(text)
            self.assertEqual(ctx.exception.reason, reason, text)


class EncodingTests(TestCase):
    def test_encode(self):
        self.assertEqual(encode_command([b"SET", b"k", b"v"]),
                         b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        self.assertEqual(encode_command([b"SET", b"", b"a\r\nb"]),
                         b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$4\r\na\r\nb\r\n")

    def test_select_and_timestamp(self):
        self.assertEqual(aofmod.select_command(0),
                         b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n")
        self.assertEqual(aofmod.timestamp_annotation(1700000000),
                         b"#TS:1700000000\r\n")

    def test_parse_in_pieces(self):
        data = (b"#TS:17\r\n" + encode_command([b"SET", b"k", b"v"])
                + encode_command([b"INCR", b"n"]))
        parser = CommandParser()
        items = []
        for byte in range(len(data)):
            parser.feed(data[byte:byte + 1])
            while True:
                item = parser.next()
                if item is None:
                    break
                items.append(item)
        self.assertEqual(items, [
            ("ts", 17, 8), ("cmd", [b"SET", b"k", b"v"], 35),
            ("cmd", [b"INCR", b"n"], len(data))])
        self.assertFalse(parser.pending)

    def test_parse_errors(self):
        for data, offset in [(b"+OK\r\n", 0), (b"*0\r\n", 0),
                             (b"*1\r\n+x\r\n", 4), (b"*1\r\n$-1\r\n", 4),
                             (b"*1\r\n$1\r\nab\r\n", 9),
                             (encode_command([b"PING"]) + b"junk", 14)]:
            parser = CommandParser()
            parser.feed(data)
            with self.assertRaises(AofFormatError) as ctx:
                while parser.next() is not None:
                    pass
            self.assertEqual(ctx.exception.offset, offset, data)

    @given(st.binary(max_size=200), st.integers(1, 50))
    @settings(max_examples=300, deadline=None)
    def test_garbage_only_raises_format_errors(self, data, piece):
        parser = CommandParser(max_bulk=1000)
        try:
            for start in range(0, len(data), piece):
                parser.feed(data[start:start + piece])
                while parser.next() is not None:
                    pass
        except AofFormatError as err:
            self.assertLessEqual(err.offset, len(data))

    def test_bulk_length_bounded(self):
        parser = CommandParser(max_bulk=10)
        parser.feed(b"*1\r\n$11\r\n")
        self.assertRaises(AofFormatError, parser.next)

    def test_command_writer(self):
        from collections import deque
        from rcluster.zset import ZSet
        writer = CommandWriter()
        self.assertEqual(writer.entry(b"s", b"v", 1234),
                         encode_command([b"SET", b"s", b"v"])
                         + encode_command([b"PEXPIREAT", b"s", b"1234"]))
        self.assertEqual(writer.entry(b"l", deque([b"a", b"b"])),
                         encode_command([b"RPUSH", b"l", b"a", b"b"]))
        big = writer.entry(b"l", deque(b"%d" % i for i in range(130)))
        self.assertEqual(big.count(b"RPUSH"), 3)
        self.assertEqual(writer.entry(b"h", {b"f": b"v"}),
                         encode_command([b"HMSET", b"h", b"f", b"v"]))
        zset = ZSet()
        zset.add(b"m", 1.5)
        self.assertEqual(writer.entry(b"z", zset),
                         encode_command([b"ZADD", b"z", b"1.5", b"m"]))
        self.assertEqual(CommandWriter(99).header(), b"#TS:99\r\n")


class AofTestCase(TestCase):
    """A server with an Aof in a temporary working directory."""

    directives = {"appendonly": "yes", "aof_use_rdb_preamble": "no",
                  "appendfsync": "always"}

    def setUp(self):
        cwd = os.getcwd()
        self.dir = tempfile.mkdtemp(prefix="rcluster-aof-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.chdir(self.dir)
        self.addCleanup(os.chdir, cwd)
        self.exits = []
        self.make()

    def make(self):
        directives = dict(self.directives)
        self.server, self.clock = make_server(now=NOW, **directives)
        self.aof = Aof(self.server, self.server.settings, self.clock,
                       exit=self.exits.append)
        self.addCleanup(self.aof.stop)

    def adir(self, *names):
        return os.path.join(self.dir, "appendonlydir", *names)

    def call(self, client, *args):
        proto, transport = client
        return exchange(proto, transport, request(*args))

    def turn(self):
        """The end of the reactor turn: the AOF flush."""
        self.clock.advance(0)

    def restart(self):
        self.aof.stop()
        self.make()
        return self.aof.load()


class WriteAndLoadTests(AofTestCase):
    def test_start_creates_base_incr_and_manifest(self):
        self.assertEqual(self.aof.load(), aofmod.NOT_EXIST)
        self.aof.start()
        self.assertEqual(sorted(os.listdir(self.adir())), [
            "appendonly.aof.1.base.aof", "appendonly.aof.1.incr.aof",
            "appendonly.aof.manifest"])
        with open(self.adir("appendonly.aof.manifest"), "rb") as fh:
            self.assertEqual(fh.read(),
                             b"file appendonly.aof.1.base.aof seq 1 type b\n"
                             b"file appendonly.aof.1.incr.aof seq 1 type i\n")

    def test_commands_written_as_redis_does(self):
        self.aof.load()
        self.aof.start()
        client = connect(self.server)
        self.call(client, "SET", "k", "v")
        self.call(client, "INCR", "n")
        self.turn()
        with open(self.adir("appendonly.aof.1.incr.aof"), "rb") as fh:
            self.assertEqual(fh.read(),
                             b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"
                             + encode_command([b"SET", b"k", b"v"])
                             + encode_command([b"INCR", b"n"]))
        self.assertEqual(self.restart(), aofmod.LOADED)
        ks = self.server.keyspace
        self.assertEqual(ks.lookup(b"k"), b"v")
        self.assertEqual(ks.lookup(b"n"), b"1")

    def test_timestamps_written_and_read(self):
        self.server.settings.apply("aof-timestamp-enabled", ["yes"])
        self.aof.load()
        self.aof.start()
        client = connect(self.server)
        self.call(client, "SET", "k", "v")
        self.turn()
        with open(self.adir("appendonly.aof.1.incr.aof"), "rb") as fh:
            self.assertTrue(fh.read().startswith(b"#TS:%d\r\n" % NOW))
        self.assertEqual(self.restart(), aofmod.LOADED)
        self.assertEqual(self.server.keyspace.lookup(b"k"), b"v")

    def test_multi_exec_loads_atomically_and_every_family(self):
        self.aof.load()
        self.aof.start()
        client = connect(self.server)
        self.call(client, "MULTI")
        self.call(client, "SET", "a", "1")
        self.call(client, "RPUSH", "l", "x", "y")
        self.call(client, "EXEC")
        self.call(client, "HSET", "h", "f", "v")
        self.call(client, "SADD", "s", "m")
        self.call(client, "ZADD", "z", "2", "m")
        self.call(client, "SET", "e", "v", "EX", "100")
        self.turn()
        with open(self.adir("appendonly.aof.1.incr.aof"), "rb") as fh:
            data = fh.read()
        self.assertIn(b"MULTI", data)
        self.assertIn(b"EXEC", data)
        self.restart()
        ks = self.server.keyspace
        self.assertEqual(list(ks.lookup(b"l")), [b"x", b"y"])
        self.assertEqual(ks.lookup(b"h"), {b"f": b"v"})
        self.assertEqual(ks.lookup(b"s"), {b"m"})
        self.assertEqual(ks.expire_time(b"e"), NOW * 1000 + 100_000)

    def _write_incr(self, data: bytes):
        self.aof.load()
        self.aof.start()
        self.aof.stop()
        with open(self.adir("appendonly.aof.1.incr.aof"), "ab") as fh:
            fh.write(data)

    def test_truncated_tail_repaired_with_warning(self):
        good = encode_command([b"SET", b"a", b"1"])
        self._write_incr(good + b"*3\r\n$3\r\nSET\r\n$1\r\nb")
        logged = []
        from twisted.logger import globalLogPublisher
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        self.make()
        self.assertEqual(self.aof.load(), aofmod.TRUNCATED)
        self.assertEqual(self.server.keyspace.lookup(b"a"), b"1")
        self.assertIsNone(self.server.keyspace.lookup(b"b"))
        self.assertEqual(os.path.getsize(self.adir(
            "appendonly.aof.1.incr.aof")), len(good))
        from twisted.logger import formatEvent
        texts = [formatEvent(e) for e in logged]
        self.assertIn("!!! Truncating the AOF appendonly.aof.1.incr.aof at "
                      "offset %d !!!" % len(good), texts)

    def test_unterminated_multi_reverted(self):
        good = encode_command([b"SET", b"a", b"1"])
        self._write_incr(good + encode_command([b"MULTI"])
                         + encode_command([b"SET", b"b", b"2"]))
        self.make()
        self.assertEqual(self.aof.load(), aofmod.TRUNCATED)
        self.assertIsNone(self.server.keyspace.lookup(b"b"))
        self.assertEqual(os.path.getsize(self.adir(
            "appendonly.aof.1.incr.aof")), len(good))

    def test_truncated_refused_without_aof_load_truncated(self):
        self._write_incr(b"*3\r\n$3\r\nSET\r\n")
        self.make()
        self.server.settings.apply("aof-load-truncated", ["no"])
        with self.assertRaises(AofLoadError) as ctx:
            self.aof.load()
        self.assertIn("appendonly.aof.1.incr.aof", str(ctx.exception))

    def test_garbage_refused_naming_file_and_offset(self):
        good = encode_command([b"SET", b"a", b"1"])
        self._write_incr(good + b"garbage\r\n" + good)
        self.make()
        with self.assertRaises(AofLoadError) as ctx:
            self.aof.load()
        text = str(ctx.exception)
        self.assertIn(self.adir("appendonly.aof.1.incr.aof"), text)
        self.assertIn("offset %d" % len(good), text)

    def test_missing_file_refused(self):
        self.aof.load()
        self.aof.start()
        self.aof.stop()
        os.unlink(self.adir("appendonly.aof.1.base.aof"))
        self.make()
        with self.assertRaises(AofLoadError) as ctx:
            self.aof.load()
        self.assertIn("appendonly.aof.1.base.aof", str(ctx.exception))

    def test_unknown_command_refused(self):
        self._write_incr(encode_command([b"NOSUCH", b"x"]))
        self.make()
        with self.assertRaises(AofLoadError) as ctx:
            self.aof.load()
        self.assertIn("Unknown command 'NOSUCH'", str(ctx.exception))

    def test_truncated_file_not_last_is_fatal(self):
        self._write_incr(b"*3\r\n$3\r\nSET\r\n")
        with open(self.adir("appendonly.aof.manifest"), "ab") as fh:
            fh.write(b"file appendonly.aof.2.incr.aof seq 2 type i\n")
        with open(self.adir("appendonly.aof.2.incr.aof"), "wb") as fh:
            fh.write(encode_command([b"SET", b"x", b"1"]))
        self.make()
        self.assertRaises(AofLoadError, self.aof.load)


class GroupCommitTests(AofTestCase):
    def setUp(self):
        super().setUp()
        self.syncs = []
        real = os.fdatasync
        self.patch(aofmod.os, "fdatasync",
                   lambda fd: (self.syncs.append(fd), real(fd)))
        self.aof.load()
        self.aof.start()

    def test_replies_held_until_one_fsync(self):
        one, two = connect(self.server), connect(self.server, ("127.0.0.1",
                                                               40001))
        self.assertEqual(self.call(one, "INCR", "n"), b"")
        self.assertEqual(self.call(two, "INCR", "n"), b"")
        self.assertEqual(self.syncs, [])
        self.turn()
        self.assertEqual(len(self.syncs), 1)
        self.assertEqual(one[1].value(), b":1\r\n")
        self.assertEqual(two[1].value(), b":2\r\n")

    def test_reads_before_a_write_are_not_held(self):
        client = connect(self.server)
        self.assertEqual(self.call(client, "GET", "n"), b"$-1\r\n")
        self.assertIsNone(self.server.reply_barrier)

    def test_pipeline_replies_in_order(self):
        proto, transport = connect(self.server)
        proto.dataReceived(request("GET", "k") + request("SET", "k", "v")
                           + request("GET", "k"))
        self.assertEqual(transport.value(), b"")
        self.turn()
        self.assertEqual(transport.value(), b"$-1\r\n+OK\r\n$1\r\nv\r\n")

    def test_everysec_holds_nothing(self):
        self.server.settings.apply("appendfsync", ["everysec"])
        client = connect(self.server)
        self.assertEqual(self.call(client, "INCR", "n"), b":1\r\n")
        self.assertIsNone(self.server.reply_barrier)


class RewriteTests(AofTestCase):
    def setUp(self):
        super().setUp()
        self.aof.load()
        self.aof.start()
        self.client = connect(self.server)

    def finish_rewrite(self):
        for _ in range(1000):
            if not self.aof.rewrite_in_progress:
                return
            self.clock.advance(0.01)
        self.fail("rewrite did not finish")

    def test_bgrewriteaof_switches_files(self):
        for i in range(50):
            self.call(self.client, "SET", "k%d" % i, "v%d" % i)
        self.call(self.client, "RPUSH", "l", "a", "b")
        self.turn()
        self.assertEqual(parse(self.call(self.client, "BGREWRITEAOF")),
                         b"Background append only file rewriting started")
        self.assertEqual(
            parse(self.call(self.client, "BGREWRITEAOF")),
            "ERR Background append only file rewriting already in progress")
        self.call(self.client, "SET", "after", "1")
        self.finish_rewrite()
        self.turn()
        self.assertEqual(sorted(os.listdir(self.adir())), [
            "appendonly.aof.2.base.aof", "appendonly.aof.2.incr.aof",
            "appendonly.aof.manifest"])
        fields = dict(self.aof.info_fields())
        self.assertEqual(fields["aof_rewrites"], 1)
        self.assertEqual(fields["aof_last_bgrewrite_status"], "ok")
        self.restart()
        ks = self.server.keyspace
        self.assertEqual(ks.lookup(b"k49"), b"v49")
        self.assertEqual(ks.lookup(b"after"), b"1")
        self.assertEqual(list(ks.lookup(b"l")), [b"a", b"b"])

    def test_rewrite_is_point_in_time(self):
        self.call(self.client, "SET", "n", "10")
        self.turn()
        self.aof.rewrite()
        self.call(self.client, "INCR", "n")     # after the instant
        self.finish_rewrite()
        self.turn()
        self.restart()
        self.assertEqual(self.server.keyspace.lookup(b"n"), b"11")

    def test_auto_rewrite_on_growth(self):
        self.server.settings.apply("auto-aof-rewrite-min-size", ["1"])
        self.server.settings.apply("auto-aof-rewrite-percentage", ["100"])
        for i in range(20):
            self.call(self.client, "SET", "k%d" % i, "x" * 100)
        self.turn()
        self.clock.advance(0.1)
        self.finish_rewrite()
        self.assertEqual(dict(self.aof.info_fields())["aof_rewrites"], 1)
        self.assertIn("appendonly.aof.2.base.aof", os.listdir(self.adir()))

    def test_config_set_appendonly(self):
        self.call(self.client, "SET", "k", "v")
        self.turn()
        self.assertEqual(parse(self.call(self.client, "CONFIG", "SET",
                                         "appendonly", "no")), b"OK")
        self.assertEqual(self.aof.state, aofmod.OFF)
        self.call(self.client, "SET", "lost", "1")
        self.assertEqual(parse(self.call(self.client, "CONFIG", "SET",
                                         "appendonly", "yes")), b"OK")
        self.assertEqual(self.aof.state, aofmod.WAIT_REWRITE)
        self.call(self.client, "SET", "during", "1")
        self.finish_rewrite()
        self.assertEqual(self.aof.state, aofmod.ON)
        self.call(self.client, "SET", "later", "1")
        self.turn()
        self.restart()
        ks = self.server.keyspace
        for key in (b"k", b"lost", b"during", b"later"):
            self.assertIsNotNone(ks.lookup(key), key)

    def test_debug_loadaof(self):
        self.server.settings.apply("enable-debug-command", ["yes"])
        self.call(self.client, "SET", "k", "v")
        self.turn()
        self.server.keyspace.delete(b"k")
        self.assertEqual(parse(self.call(self.client, "DEBUG", "LOADAOF")),
                         b"OK")
        self.assertEqual(self.server.keyspace.lookup(b"k"), b"v")


class PreambleTests(AofTestCase):
    """aof-use-rdb-preamble yes (the default): bases are RDB files."""

    directives = {"appendonly": "yes", "appendfsync": "everysec"}

    def fill(self, client):
        self.call(client, "SET", "s", "v", "PX", "100000")
        self.call(client, "RPUSH", "l", "a", "b")
        self.call(client, "HSET", "h", "f", "v")
        self.call(client, "SADD", "set", "m", "1")
        self.call(client, "ZADD", "z", "1.5", "m")
        self.call(client, "XADD", "x", "1-1", "f", "v")
        self.call(client, "XGROUP", "CREATE", "x", "g", "0")

    def check(self):
        ks = self.server.keyspace
        self.assertEqual(ks.lookup(b"s"), b"v")
        self.assertEqual(ks.expire_time(b"s"), NOW * 1000 + 100_000)
        self.assertEqual(list(ks.lookup(b"l")), [b"a", b"b"])
        self.assertEqual(ks.lookup(b"h"), {b"f": b"v"})
        self.assertEqual(ks.lookup(b"set"), {b"m", b"1"})
        self.assertEqual(ks.lookup(b"z").score(b"m"), 1.5)
        self.assertEqual(len(ks.lookup(b"x")), 1)
        self.assertIn(b"g", ks.lookup(b"x").groups)

    def test_rdb_base_rewrite_and_load(self):
        self.aof.load()
        self.aof.start()
        self.assertIn("appendonly.aof.1.base.rdb", os.listdir(self.adir()))
        client = connect(self.server)
        self.fill(client)
        self.turn()
        self.aof.rewrite()
        for _ in range(100):
            self.clock.advance(0.01)
        self.assertFalse(self.aof.rewrite_in_progress)
        with open(self.adir("appendonly.aof.2.base.rdb"), "rb") as fh:
            self.assertEqual(fh.read(5), b"REDIS")
        self.restart()
        self.check()

    def test_command_base_of_every_type(self):
        self.server.settings.apply("aof-use-rdb-preamble", ["no"])
        self.aof.load()
        self.aof.start()
        client = connect(self.server)
        self.fill(client)
        self.turn()
        self.aof.rewrite()
        for _ in range(100):
            self.clock.advance(0.01)
        self.assertIn("appendonly.aof.2.base.aof", os.listdir(self.adir()))
        self.restart()
        self.check()

    def test_old_style_preamble_file_is_migrated(self):
        from rcluster.persistence.rdb import RdbWriter
        writer = RdbWriter(self.server.settings)
        data = (writer.header([(b"aof-preamble", b"1")])
                + writer.select_db(0, 1, 0) + writer.entry(b"a", b"1")
                + writer.footer() + encode_command([b"SET", b"b", b"2"]))
        with open("appendonly.aof", "wb") as fh:
            fh.write(data)
        self.assertEqual(self.aof.load(), aofmod.LOADED)
        self.assertEqual(self.server.keyspace.lookup(b"a"), b"1")
        self.assertEqual(self.server.keyspace.lookup(b"b"), b"2")
        self.assertFalse(os.path.exists("appendonly.aof"))
        with open(self.adir("appendonly.aof.manifest"), "rb") as fh:
            self.assertEqual(fh.read(),
                             b"file appendonly.aof seq 1 type b\n")

    def test_corrupt_rdb_base_refused(self):
        self.aof.load()
        self.aof.start()
        self.aof.stop()
        path = self.adir("appendonly.aof.1.base.rdb")
        with open(path, "r+b") as fh:
            fh.seek(-3, 2)
            fh.write(b"\xff\xff\xff")
        self.make()
        with self.assertRaises(AofLoadError) as ctx:
            self.aof.load()
        self.assertIn(os.path.abspath(path), str(ctx.exception))


class CronTests(AofTestCase):
    def test_cron_runs_again_after_appendonly_no_then_yes(self):
        self.aof.load()
        self.aof.start()
        self.server.settings.config_set([("appendonly", "no")])
        self.assertFalse(self.aof.loop is not None and self.aof.loop.running)
        self.server.settings.config_set([("appendonly", "yes")])
        self.assertTrue(self.aof.loop.running)
        for _ in range(20):
            self.clock.advance(0.1)
        self.assertEqual(self.aof.state, aofmod.ON)

    def test_shutdown_keeps_appending(self):
        self.aof.load()
        self.aof.start()
        client = connect(self.server)
        self.call(client, "SET", "a", "1")
        self.assertIsNone(self.aof.shutdown())
        self.call(client, "SET", "b", "2")
        self.turn()
        self.restart()
        self.assertEqual(self.server.keyspace.lookup(b"b"), b"2")

    def test_files_without_manifest_refused(self):
        self.aof.load()
        self.aof.start()
        self.aof.stop()
        os.unlink(self.adir("appendonly.aof.manifest"))
        self.make()
        with self.assertRaises(AofLoadError) as ctx:
            self.aof.load()
        self.assertIn("no manifest appendonly.aof.manifest",
                      str(ctx.exception))


class LoadSemanticsTests(AofTestCase):
    def test_nothing_expires_while_loading(self):
        """A command of the file acts on the key as it was when it ran,
        even if its TTL has passed since (Redis doesn't expire keys while
        loading): no key comes back without its TTL."""
        self.aof.load()
        self.aof.start()
        client = connect(self.server)
        self.call(client, "SET", "k", "5", "PX", "1000")
        self.call(client, "INCR", "k")
        self.call(client, "SET", "old", "x", "PXAT", str(NOW * 1000 + 500))
        self.turn()
        self.aof.stop()
        self.make()
        self.clock.advance(10)          # both deadlines have passed
        self.aof.load()
        ks = self.server.keyspace
        self.assertEqual(ks.expire_time(b"k"), NOW * 1000 + 1000)
        self.assertEqual(ks.values[b"k"], b"6")
        ks.tick(self.server.now_ms())
        self.assertIsNone(ks.lookup(b"k"))
        self.assertIsNone(ks.lookup(b"old"))

    def test_loaded_keys_are_accessed_at_load_time(self):
        # Replayed with expiry off, but stamped with the real time: an
        # idle time from the load on, not from 1970.
        self.aof.load()
        self.aof.start()
        client = connect(self.server)
        self.call(client, "SET", "k", "v")
        self.call(client, "SELECT", "1")      # another database's clock
        self.call(client, "SET", "k1", "v")
        self.turn()
        self.aof.stop()
        self.make()
        self.clock.advance(30)
        self.aof.load()
        self.clock.advance(2)
        now = self.server.now_ms()
        for db, key in ((0, b"k"), (1, b"k1")):
            ks = self.server.dbs[db]
            ks.tick(now)
            self.assertEqual(eviction.idle_ms(ks, key), 2000)

    def test_sliced_load(self):
        self.aof.load()
        self.aof.start()
        client = connect(self.server)
        for i in range(3000):
            self.call(client, "RPUSH", "l", "x" * 50)
        self.turn()
        self.aof.stop()
        self.make()
        results, turns = [], []
        call_later = self.clock.callLater
        self.patch(self.clock, "callLater",
                   lambda delay, fn, *a: (turns.append(fn),
                                          call_later(delay, fn, *a))[1])
        self.aof.load_sliced(budget=0.0).addCallback(results.append)
        self.clock.advance(0)
        self.assertEqual(results, [aofmod.LOADED])
        self.assertGreater(len(turns), 2)
        self.assertEqual(len(self.server.keyspace.lookup(b"l")), 3000)

    def test_sliced_load_failure(self):
        self.aof.load()
        self.aof.start()
        self.aof.stop()
        with open(self.adir("appendonly.aof.1.incr.aof"), "ab") as fh:
            fh.write(b"garbage\r\n")
        self.make()
        failures = []
        self.aof.load_sliced().addErrback(failures.append)
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertEqual(len(failures), 1)
        self.assertIsInstance(failures[0].value, AofLoadError)




class StartFailureTests(AofTestCase):
    def test_unwritable_directory_exits(self):
        with open("appendonlydir", "w") as fh:     # a file, not a directory
            fh.write("x")
        self.aof.start()
        self.assertEqual(self.exits, [1])
        self.assertEqual(self.aof.state, aofmod.OFF)

    def test_client_gone_while_held(self):
        self.aof.load()
        self.aof.start()
        proto, transport = connect(self.server)
        proto.dataReceived(request("SET", "k", "v"))
        proto.connectionLost(None)
        self.turn()
        self.assertIsNone(self.server.reply_barrier)
        self.assertEqual(transport.value(), b"")


class ScheduledRewriteTests(AofTestCase):
    directives = {"appendonly": "no", "aof_use_rdb_preamble": "no"}

    def test_bgrewriteaof_in_multi_with_appendonly_no(self):
        client = connect(self.server)
        self.call(client, "SET", "k", "v")
        self.call(client, "MULTI")
        self.call(client, "BGREWRITEAOF")
        self.assertEqual(parse(self.call(client, "EXEC")),
                         [b"Background append only file rewriting "
                          b"scheduled"])
        for _ in range(5):
            self.clock.advance(0.1)
        self.assertEqual(self.aof.rewrites, 1)
        self.assertFalse(self.aof.rewrite_in_progress)
        with open(self.adir("appendonly.aof.manifest"), "rb") as fh:
            self.assertEqual(fh.read(),
                             b"file appendonly.aof.1.base.aof seq 1 type b\n")

    def test_appendonly_yes_inside_multi_is_scheduled(self):
        client = connect(self.server)
        self.call(client, "SET", "n", "1")
        self.call(client, "MULTI")
        self.call(client, "INCR", "n")
        self.call(client, "CONFIG", "SET", "appendonly", "yes")
        self.call(client, "INCR", "n")
        self.call(client, "EXEC")
        self.assertEqual(self.aof.state, aofmod.WAIT_REWRITE)
        for _ in range(5):
            self.clock.advance(0.1)
        self.assertEqual(self.aof.state, aofmod.ON)
        self.call(client, "INCR", "n")
        self.turn()
        self.restart()
        self.assertEqual(self.server.keyspace.lookup(b"n"), b"4")


class WriteErrorTests(AofTestCase):
    directives = {"appendonly": "yes", "aof_use_rdb_preamble": "no",
                  "appendfsync": "everysec"}

    def test_misconf_while_the_aof_cannot_be_written(self):
        import errno
        self.aof.load()
        self.aof.start()
        client = connect(self.server)
        real = os.write

        def full(fd, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.patch(aofmod.os, "write", full)
        self.call(client, "SET", "a", "1")
        self.turn()
        self.assertEqual(dict(self.aof.info_fields())["aof_last_write_status"],
                         "err")
        self.assertEqual(parse(self.call(client, "SET", "b", "2")),
                         "MISCONF Errors writing to the AOF file: No space "
                         "left on device")
        self.assertEqual(parse(self.call(client, "GET", "a")), b"1")
        self.patch(aofmod.os, "write", real)
        self.clock.advance(0.1)             # the cron retries the write
        self.assertEqual(parse(self.call(client, "SET", "b", "2")), b"OK")
        self.turn()
        self.restart()
        self.assertEqual(self.server.keyspace.lookup(b"a"), b"1")
        self.assertEqual(self.server.keyspace.lookup(b"b"), b"2")

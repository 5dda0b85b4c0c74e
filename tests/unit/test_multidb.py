"""Multiple databases (SELECT, MOVE, SWAPDB, COPY ... DB, FLUSHDB /
FLUSHALL, INFO keyspace), and what the write path hands its sinks when a
unit spans databases.  Expected replies are redis-server 7.0.15's."""
from tests.protocol.helpers import NOW, ServerTestCase, make_server, connect
from tests.protocol.helpers import exchange, parse, request


class MultiDbTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.sent = []
        self.server.write_path.add_sink(
            lambda db, ops: self.sent.append((db, [list(a) for a in ops])))

    def test_select_isolates_keys(self):
        self.call("SET", "k", "zero")
        self.assertEqual(self.call("SELECT", "3"), b"OK")
        self.assertIsNone(self.call("GET", "k"))
        self.call("SET", "k", "three")
        self.assertEqual(self.call("DBSIZE"), 1)
        other = self.connect()
        self.assertEqual(self.call("GET", "k", client=other), b"zero")
        self.assertEqual(self.call("GET", "k"), b"three")

    def test_select_errors(self):
        self.assertEqual(self.call("SELECT", "16"),
                         "ERR DB index is out of range")
        self.assertEqual(self.call("SELECT", "-1"),
                         "ERR DB index is out of range")
        self.assertEqual(self.call("SELECT", "x"),
                         "ERR value is not an integer or out of range")

    def test_move(self):
        self.call("SET", "k", "v")
        self.call("PEXPIRE", "k", "100000")
        self.assertEqual(self.call("MOVE", "k", "0"),
                         "ERR source and destination objects are the same")
        self.assertEqual(self.call("MOVE", "k", "99"),
                         "ERR DB index is out of range")
        self.assertEqual(self.call("MOVE", "nokey", "1"), 0)
        self.assertEqual(self.call("MOVE", "k", "1"), 1)
        self.assertIsNone(self.call("GET", "k"))
        self.call("SELECT", "1")
        self.assertEqual(self.call("GET", "k"), b"v")
        self.assertGreater(self.call("PTTL", "k"), 0)
        self.call("SET", "x", "1")
        self.call("SELECT", "0")
        self.call("SET", "x", "0")
        self.assertEqual(self.call("MOVE", "x", "1"), 0)   # exists there

    def test_swapdb(self):
        self.call("SET", "a", "in0")
        self.assertEqual(self.call("SWAPDB", "0", "2"), b"OK")
        self.assertIsNone(self.call("GET", "a"))
        self.call("SELECT", "2")
        self.assertEqual(self.call("GET", "a"), b"in0")
        self.assertEqual(self.call("SWAPDB", "x", "1"),
                         "ERR invalid first DB index")
        self.assertEqual(self.call("SWAPDB", "1", "x"),
                         "ERR invalid second DB index")
        self.assertEqual(self.call("SWAPDB", "1", "16"),
                         "ERR DB index is out of range")

    def test_copy_db(self):
        self.call("RPUSH", "l", "a", "b")
        self.assertEqual(self.call("COPY", "l", "l", "DB", "4"), 1)
        self.assertEqual(self.call("COPY", "l", "l", "DB", "4"), 0)
        self.assertEqual(self.call("COPY", "l", "l", "DB", "4", "REPLACE"), 1)
        self.assertEqual(self.call("COPY", "l", "l", "DB", "0"),
                         "ERR source and destination objects are the same")
        self.call("SELECT", "4")
        self.call("RPUSH", "l", "c")
        self.call("SELECT", "0")
        self.assertEqual(self.call("LRANGE", "l", "0", "-1"), [b"a", b"b"])

    def test_flushdb_and_flushall(self):
        self.call("SET", "a", "1")
        self.call("SELECT", "1")
        self.call("SET", "b", "1")
        self.call("FLUSHDB")
        self.assertEqual(self.call("DBSIZE"), 0)
        self.call("SELECT", "0")
        self.assertEqual(self.call("DBSIZE"), 1)
        self.call("SELECT", "5")
        self.call("SET", "c", "1")
        self.call("FLUSHALL")
        for db in (0, 1, 5):
            self.call("SELECT", str(db))
            self.assertEqual(self.call("DBSIZE"), 0)

    def test_info_keyspace(self):
        self.call("SET", "a", "1")
        self.call("SELECT", "7")
        self.call("SET", "b", "1")
        self.call("SET", "c", "1", "EX", "100")
        info = self.call("INFO", "keyspace").decode()
        self.assertIn("db0:keys=1,expires=0,avg_ttl=0", info)
        self.assertIn("db7:keys=2,expires=1,avg_ttl=", info)

    def test_propagation_carries_the_db(self):
        self.call("SET", "a", "1")
        self.call("SELECT", "2")
        self.call("SET", "b", "2")
        self.assertEqual(self.sent, [(0, [[b"SET", b"a", b"1"]]),
                                     (2, [[b"SET", b"b", b"2"]])])

    def test_transaction_across_dbs(self):
        self.call("MULTI")
        self.call("SET", "a", "1")
        self.call("SELECT", "3")
        self.call("SET", "b", "2")
        self.assertEqual(self.call("EXEC"), [b"OK", b"OK", b"OK"])
        self.assertEqual(self.sent, [
            (0, [[b"MULTI"], [b"SET", b"a", b"1"]]),
            (3, [[b"SET", b"b", b"2"], [b"EXEC"]])])
        # The client stays in db 3 after EXEC, as in Redis.
        self.assertEqual(self.call("GET", "b"), b"2")

    def test_move_propagates_in_source_db(self):
        self.call("SELECT", "1")
        self.call("SET", "k", "v")
        self.sent.clear()
        self.call("MOVE", "k", "2")
        self.assertEqual(self.sent, [(1, [[b"MOVE", b"k", b"2"]])])

    def test_lazy_expiry_in_other_db_deletes_there(self):
        self.call("SELECT", "1")
        self.call("SET", "k", "v", "PX", "10")
        self.sent.clear()
        self.clock.advance(1)
        self.server.keyspace.tick(self.server.now_ms())
        self.assertIsNone(self.call("GET", "k"))
        self.assertEqual(self.sent, [(1, [[b"DEL", b"k"]])])

    def test_active_expiry_in_other_db(self):
        self.call("SELECT", "4")
        self.call("SET", "k", "v", "PX", "10")
        self.sent.clear()
        self.clock.advance(1)
        self.server.cron()
        self.assertEqual(self.sent, [(4, [[b"DEL", b"k"]])])
        self.assertEqual(self.call("DBSIZE"), 0)

    def test_watch_is_per_db(self):
        other = self.connect()
        self.call("SELECT", "1", client=other)
        self.call("WATCH", "k")
        self.call("SET", "k", "x", client=other)     # db 1: not ours
        self.call("MULTI")
        self.call("SET", "k", "mine")
        self.assertEqual(self.call("EXEC"), [b"OK"])
        self.call("WATCH", "k")
        self.call("SET", "k", "y", client=self.connect())   # db 0
        self.call("MULTI")
        self.call("SET", "k", "mine")
        self.assertIsNone(self.call("EXEC"))

    def test_watch_in_db_touched_by_flushall_and_swapdb(self):
        self.call("SELECT", "2")
        self.call("SET", "k", "v")
        self.call("WATCH", "k")
        self.call("SWAPDB", "2", "3", client=self.connect())
        self.call("MULTI")
        self.call("PING")
        self.assertIsNone(self.call("EXEC"))

    def test_blocking_pop_in_its_db(self):
        waiter = self.connect()
        self.call("SELECT", "1", client=waiter)
        self.raw("BLPOP", "q", "0", client=waiter)
        self.call("RPUSH", "q", "zero")        # db 0: not the waiter's
        self.assertEqual(self.pending(waiter), b"")
        self.call("SELECT", "1")
        self.call("RPUSH", "q", "one")
        self.assertEqual(parse(self.pending(waiter)), [b"q", b"one"])
        self.call("SELECT", "0")
        self.assertEqual(self.call("LLEN", "q"), 1)

    def test_keyspace_events_name_the_db(self):
        self.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        sub = self.connect()
        self.raw("PSUBSCRIBE", "__key*@*__:*", client=sub)
        self.call("SELECT", "5")
        self.call("SET", "k", "v")
        self.call("MOVE", "k", "6")
        out = self.pending(sub)
        self.assertIn(b"__keyspace@5__:k", out)
        self.assertIn(b"__keyevent@5__:move_from", out)
        self.assertIn(b"__keyevent@6__:move_to", out)


class ClusterDbTests(ServerTestCase):
    def test_select_refused_in_cluster_mode_by_default(self):
        server, _ = make_server(now=NOW, cluster_enabled="yes")
        self.assertEqual(len(server.dbs), 1)
        client = connect(server)
        self.assertEqual(
            parse(exchange(*client, request("SELECT", "1"))),
            "ERR SELECT is not allowed in cluster mode")

    def test_cluster_databases(self):
        server, _ = make_server(now=NOW, cluster_enabled="yes",
                                cluster_databases=4)
        self.assertEqual(len(server.dbs), 4)
        client = connect(server)
        self.assertEqual(parse(exchange(*client, request("SELECT", "3"))),
                         b"OK")
        self.assertEqual(parse(exchange(*client, request("SELECT", "4"))),
                         "ERR DB index is out of range")
        self.assertEqual(parse(exchange(*client, request("SWAPDB", "0",
                                                         "1"))),
                         "ERR SWAPDB is not allowed in cluster mode")


class MultiDbSnapshotTests(ServerTestCase):
    """A snapshot of several databases: SELECTDB per db, each db as it was
    when the snapshot started (early writes of a db whose turn has not
    come are held back), and a checksum over the file as written."""

    def decode(self, data):
        from rcluster.persistence import rdb
        reader = rdb.RdbReader()
        records = list(reader.feed(data))
        reader.finish()                 # checks the CRC64
        out, db = {}, None
        for record in records:
            kind = record.__class__.__name__
            if kind == "SelectDb":
                db = record.db
            elif kind == "Entry":
                out.setdefault(db, {})[record.key] = \
                    list(record.value) if not isinstance(record.value,
                                                         bytes) \
                    else record.value
        return out

    def test_snapshot_of_several_dbs_with_writes_meanwhile(self):
        from rcluster.persistence import rdb
        from rcluster.persistence.snapshot import snapshot_of
        for db in (0, 2, 9):
            self.call("SELECT", str(db))
            self.call("RPUSH", "l", f"db{db}")
            for i in range(50):
                self.call("SET", f"k{i}", f"{db}:{i}")
        chunks = []
        snap = snapshot_of(self.server, rdb.RdbWriter(self.server.settings),
                           chunks.append)
        snap.start()
        # Changes in every db before their turn: the file keeps the old.
        for db in (9, 2, 0):
            self.call("SELECT", str(db))
            self.call("RPUSH", "l", "later")
            self.call("DEL", "k1")
            self.call("SET", "new", "x")
        while not snap.done:
            snap.step(max_keys=3)
        got = self.decode(b"".join(chunks))
        self.assertEqual(sorted(got), [0, 2, 9])
        for db in (0, 2, 9):
            self.assertEqual(got[db][b"l"], [b"db%d" % db])
            self.assertEqual(got[db][b"k1"], b"%d:1" % db)
            self.assertNotIn(b"new", got[db])
            self.assertEqual(len(got[db]), 51)


class ScriptDbTests(ServerTestCase):
    def test_script_runs_in_callers_db_and_select_stays_inside(self):
        self.call("SELECT", "3")
        self.assertEqual(self.call(
            "EVAL", "redis.call('SET', KEYS[1], 'x'); "
            "redis.call('SELECT', 4); redis.call('SET', KEYS[1], 'y'); "
            "return 1", "1", "k"), 1)
        self.assertEqual(self.call("GET", "k"), b"x")
        self.call("SELECT", "4")
        self.assertEqual(self.call("GET", "k"), b"y")


class ClientDbTests(ServerTestCase):
    def test_client_list_shows_db_and_reset_selects_0(self):
        self.call("SELECT", "6")
        self.assertIn(b" db=6 ", self.call("CLIENT", "INFO"))
        self.assertEqual(self.call("RESET"), b"RESET")
        self.assertIn(b" db=0 ", self.call("CLIENT", "INFO"))

    def test_monitor_names_the_db(self):
        watcher = self.connect()
        self.raw("MONITOR", client=watcher)
        self.pending(watcher)
        self.call("SELECT", "2")
        self.call("SET", "k", "v")
        self.assertIn(b' [2 127.0.0.1:40000] "SET" "k" "v"',
                      self.pending(watcher))

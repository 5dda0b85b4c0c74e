"""MULTI / EXEC / DISCARD / WATCH / UNWATCH (rcluster/commands/
transactions.py) through a Server on a fake clock: exact replies, WATCH
invalidation by writes, expiry and FLUSHALL."""
from rcluster.commands.table import Command
from tests.protocol.helpers import ServerTestCase

EXECABORT = b"-EXECABORT Transaction discarded because of previous errors.\r\n"
NULL_ARRAY = b"*-1\r\n"


class MultiExecTests(ServerTestCase):
    def test_queued_commands_run_at_exec(self):
        self.assertEqual(self.raw("MULTI"), b"+OK\r\n")
        self.assertEqual(self.raw("SET", "a", 1), b"+QUEUED\r\n")
        self.assertEqual(self.raw("INCR", "a"), b"+QUEUED\r\n")
        self.assertEqual(self.call("GET", "a"), b"QUEUED")
        self.assertEqual(self.ks.lookup(b"a"), None)
        self.assertEqual(self.raw("EXEC"),
                         b"*3\r\n+OK\r\n:2\r\n$1\r\n2\r\n")
        self.assertEqual(self.server.clients[self.proto.client.id].multi,
                         None)

    def test_empty_transaction(self):
        self.call("MULTI")
        self.assertEqual(self.raw("EXEC"), b"*0\r\n")

    def test_runtime_errors_do_not_abort_the_rest(self):
        self.call("SET", "s", "text")
        self.call("MULTI")
        self.call("INCR", "s")
        self.call("SET", "b", 1)
        self.assertEqual(
            self.raw("EXEC"),
            b"*2\r\n-ERR value is not an integer or out of range\r\n+OK\r\n")
        self.assertEqual(self.call("GET", "b"), b"1")

    def test_exec_and_discard_without_multi(self):
        self.assertEqual(self.call("EXEC"), "ERR EXEC without MULTI")
        self.assertEqual(self.call("DISCARD"), "ERR DISCARD without MULTI")

    def test_nested_multi_is_an_error_that_does_not_abort(self):
        self.call("MULTI")
        self.assertEqual(self.call("MULTI"),
                         "ERR MULTI calls can not be nested")
        self.call("SET", "a", 1)
        self.assertEqual(self.raw("EXEC"), b"*1\r\n+OK\r\n")

    def test_discard_drops_the_queue(self):
        self.call("MULTI")
        self.call("SET", "a", 1)
        self.assertEqual(self.raw("DISCARD"), b"+OK\r\n")
        self.assertEqual(self.call("GET", "a"), None)
        self.assertEqual(self.call("EXEC"), "ERR EXEC without MULTI")

    def test_unknown_command_aborts_exec(self):
        self.call("MULTI")
        self.call("SET", "a", 1)
        self.assertEqual(self.call("NOSUCH", "x"),
                         "ERR unknown command 'NOSUCH', with args beginning "
                         "with: 'x' ")
        self.assertEqual(self.raw("EXEC"), EXECABORT)
        self.assertEqual(self.call("GET", "a"), None)
        self.assertEqual(self.call("EXEC"), "ERR EXEC without MULTI")

    def test_wrong_arity_aborts_exec(self):
        self.call("MULTI")
        self.assertEqual(self.call("GET"),
                         "ERR wrong number of arguments for 'get' command")
        self.call("SET", "a", 1)
        self.assertEqual(self.raw("EXEC"), EXECABORT)
        self.assertEqual(self.call("DBSIZE"), 0)

    def test_queue_error_wins_over_a_touched_watch(self):
        self.call("WATCH", "a")
        self.call("SET", "a", 1)
        self.call("MULTI")
        self.call("NOSUCH")
        self.assertEqual(self.raw("EXEC"), EXECABORT)

    def test_exec_in_resp3(self):
        self.call("HELLO", 3)
        self.call("WATCH", "a")
        self.call("SET", "a", 1)
        self.call("MULTI")
        self.assertEqual(self.raw("EXEC"), b"_\r\n")

    def test_blocking_commands_do_not_block_inside_exec(self):
        seen = []

        def fake_block(c, argv):
            seen.append(c.server.in_exec)
            return c.server.blocking.block(c, [argv[1]], 0, row, argv,
                                           b"timed out")
        row = Command("fakeblock", fake_block, 2, frozenset({"blocking"}))
        self.server.table.add(row)
        self.call("MULTI")
        self.call("FAKEBLOCK", "k")
        self.assertEqual(self.call("EXEC"), [b"timed out"])
        self.assertEqual(seen, [True])
        self.assertFalse(self.server.in_exec)
        self.assertIs(self.proto.client.blocked, None)

    def test_queued_writes_propagate_once_wrapped(self):
        sent = self.capture_propagation()
        self.call("MULTI")
        self.call("SET", "a", 1)
        self.call("GET", "a")
        self.call("EXPIRE", "a", 10)
        self.call("EXEC")
        self.assertEqual([argv[0] for argv in sent],
                         [b"MULTI", b"SET", b"PEXPIREAT", b"EXEC"])


class WatchTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.other = self.connect()

    def transaction(self) -> bytes:
        """MULTI / SET result 1 / EXEC: the EXEC reply."""
        self.ks.delete(b"result")
        self.assertEqual(self.raw("MULTI"), b"+OK\r\n")
        self.assertEqual(self.raw("SET", "result", 1), b"+QUEUED\r\n")
        return self.raw("EXEC")

    def assert_exec_runs(self):
        self.assertEqual(self.transaction(), b"*1\r\n+OK\r\n")

    def assert_exec_fails(self):
        self.assertEqual(self.transaction(), NULL_ARRAY)
        self.assertEqual(self.call("EXISTS", "result"), 0)

    def test_untouched_watch(self):
        self.call("SET", "k", 1)
        self.assertEqual(self.raw("WATCH", "k", "j"), b"+OK\r\n")
        self.call("GET", "k", client=self.other)
        self.call("SET", "unrelated", 1, client=self.other)
        self.assert_exec_runs()

    def test_write_by_another_client(self):
        self.call("SET", "k", 1)
        self.call("WATCH", "k")
        self.call("INCR", "k", client=self.other)
        self.assert_exec_fails()

    def test_write_by_the_watching_client_itself(self):
        self.call("WATCH", "k")
        self.call("SET", "k", 1)
        self.assert_exec_fails()

    def test_creating_a_watched_missing_key(self):
        self.call("WATCH", "k")
        self.call("SET", "k", 1, client=self.other)
        self.assert_exec_fails()

    def test_no_op_writes_do_not_touch(self):
        self.call("WATCH", "k")
        self.call("DEL", "k", client=self.other)
        self.call("EXPIRE", "k", 10, client=self.other)
        self.assert_exec_runs()

    def test_expire_and_persist_touch(self):
        self.call("SET", "k", 1)
        self.call("WATCH", "k")
        self.call("EXPIRE", "k", 100, client=self.other)
        self.assert_exec_fails()
        self.call("WATCH", "k")
        self.call("PERSIST", "k", client=self.other)
        self.assert_exec_fails()

    def test_rename_touches_both_keys(self):
        self.call("SET", "a", 1)
        self.call("WATCH", "b")
        self.call("RENAME", "a", "b", client=self.other)
        self.assert_exec_fails()
        self.call("WATCH", "b")
        self.call("RENAME", "b", "a", client=self.other)
        self.assert_exec_fails()

    def test_copy_touches_only_its_destination(self):
        self.call("SET", "a", 1)
        self.call("WATCH", "a")
        self.call("COPY", "a", "b", client=self.other)
        self.assert_exec_runs()
        self.call("WATCH", "b")
        self.call("COPY", "a", "b", "REPLACE", client=self.other)
        self.assert_exec_fails()

    def test_watch_inside_multi(self):
        self.call("MULTI")
        self.assertEqual(self.call("WATCH", "k"),
                         "ERR WATCH inside MULTI is not allowed")
        self.call("SET", "k", 1)
        self.assertEqual(self.raw("EXEC"), b"*1\r\n+OK\r\n")

    def test_unwatch(self):
        self.call("WATCH", "k")
        self.call("SET", "k", 1, client=self.other)
        self.assertEqual(self.raw("UNWATCH"), b"+OK\r\n")
        self.assert_exec_runs()
        self.assertEqual(self.server.watched_keys, {})

    def test_exec_and_discard_forget_the_watches(self):
        self.call("WATCH", "k")
        self.assert_exec_runs()
        self.call("SET", "k", 1, client=self.other)
        self.assert_exec_runs()
        self.call("WATCH", "k")
        self.call("MULTI")
        self.call("DISCARD")
        self.assertEqual(self.server.watched_keys, {})
        self.call("SET", "k", 2, client=self.other)
        self.assert_exec_runs()

    def test_a_failed_exec_resets_the_client(self):
        self.call("WATCH", "k")
        self.call("SET", "k", 1, client=self.other)
        self.assert_exec_fails()
        self.assert_exec_runs()

    def test_watch_after_a_touch_adds_nothing(self):
        self.call("WATCH", "a")
        self.call("SET", "a", 1, client=self.other)
        self.call("WATCH", "b")
        self.assertEqual(list(self.proto.client.watched), [b"a"])
        self.assert_exec_fails()

    def test_closed_client_stops_watching(self):
        self.call("WATCH", "k")
        self.proto.connectionLost(None)
        self.assertEqual(self.server.watched_keys, {})

    # -- expiry -------------------------------------------------------------
    def test_key_expiring_after_watch_fails_exec(self):
        self.call("SET", "k", 1, "PX", 100)
        self.call("WATCH", "k")
        self.clock.advance(1)
        # Nobody touched it: EXEC itself notices the deadline passed.
        self.assertEqual(len(self.ks), 1)
        self.assert_exec_fails()

    def test_key_expired_by_another_clients_read(self):
        self.call("SET", "k", 1, "PX", 100)
        self.call("WATCH", "k")
        self.clock.advance(1)
        self.call("GET", "k", client=self.other)
        self.assert_exec_fails()

    def test_key_expired_by_the_active_cycle(self):
        self.call("SET", "k", 1, "PX", 100)
        self.call("WATCH", "k")
        self.clock.advance(1)
        self.server.cron()
        self.assertEqual(len(self.ks), 0)
        self.assert_exec_fails()

    def test_key_already_expired_at_watch_time(self):
        self.call("SET", "k", 1, "PX", 100)
        self.clock.advance(1)
        self.call("WATCH", "k")
        self.assert_exec_runs()

    def test_already_expired_key_removed_afterwards(self):
        self.call("SET", "k", 1, "PX", 100)
        self.clock.advance(1)
        self.call("WATCH", "k")
        # Its removal is no logical change: it was already gone.
        self.call("GET", "k", client=self.other)
        self.assert_exec_runs()
        self.call("SET", "k", 1, "PX", 100)
        self.clock.advance(1)
        self.call("WATCH", "k")
        self.call("DEL", "k", client=self.other)
        self.server.cron()
        self.assert_exec_runs()

    def test_already_expired_key_written_again(self):
        self.call("SET", "k", 1, "PX", 100)
        self.clock.advance(1)
        self.call("WATCH", "k")
        self.call("SET", "k", 2, client=self.other)
        self.assert_exec_fails()

    # -- FLUSHALL / FLUSHDB -------------------------------------------------
    def test_flushall_touches_watched_keys_that_exist(self):
        self.call("SET", "k", 1)
        self.call("WATCH", "k")
        self.call("FLUSHALL", client=self.other)
        self.assert_exec_fails()

    def test_flushdb_touches_watched_keys_that_exist(self):
        self.call("SET", "k", 1)
        self.call("WATCH", "k")
        self.call("FLUSHDB", "ASYNC", client=self.other)
        self.assert_exec_fails()

    def test_flushall_leaves_watches_on_missing_keys(self):
        self.call("SET", "other", 1)
        self.call("WATCH", "k")
        self.call("FLUSHALL", client=self.other)
        self.assert_exec_runs()

    def test_flushall_and_an_already_expired_watched_key(self):
        self.call("SET", "k", 1, "PX", 100)
        self.clock.advance(1)
        self.call("WATCH", "k")
        self.call("FLUSHALL", client=self.other)
        self.assert_exec_runs()

    def test_flushall_inside_the_watching_transaction(self):
        self.call("SET", "k", 1)
        self.call("WATCH", "k")
        self.call("MULTI")
        self.call("FLUSHALL")
        self.assertEqual(self.raw("EXEC"), b"*1\r\n+OK\r\n")

"""rdb-save-incremental-fsync and aof-rewrite-incremental-fsync: a save
fsyncs its file every 4 MB written (Redis's rioSetAutoSync)."""
import io
import os
import shutil
import tempfile

from twisted.trial.unittest import TestCase

from rcluster.persistence import service
from rcluster.persistence.autosync import AUTOSYNC_BYTES, AutoSync
from tests.unit.test_aof import AofTestCase, connect

MB = 1024 * 1024


class AutoSyncTests(TestCase):
    def test_every_four_megabytes(self):
        synced = []
        sync = AutoSync(io.BytesIO(), True, synced.append)
        sync.fh.fileno = lambda: 7
        for _ in range(9):
            sync.wrote(MB)
        self.assertEqual(AUTOSYNC_BYTES, 4 * MB)
        self.assertEqual(synced, [7, 7])

    def test_off(self):
        synced = []
        sync = AutoSync(io.BytesIO(), False, synced.append)
        for _ in range(20):
            sync.wrote(MB)
        self.assertEqual(synced, [])


class FsyncCounting(TestCase):
    def count_fsyncs(self):
        calls = []
        real = os.fsync

        def fsync(fd):
            calls.append(fd)
            real(fd)
        self.patch(os, "fsync", fsync)
        return calls

    def temp_file(self):
        directory = tempfile.mkdtemp(prefix="rcluster-autosync-")
        self.addCleanup(shutil.rmtree, directory, True)
        return open(os.path.join(directory, "out"), "wb")


class SaveOutputTests(FsyncCounting):
    """The foreground save's output (SAVE), 10 MB through it."""

    def write(self, enabled):
        calls = self.count_fsyncs()
        with self.temp_file() as fh:
            out = service._FileOut(fh, enabled)
            for _ in range(40):
                out(b"x" * (MB // 4))
            out.flush()
        return len(calls)

    def test_on(self):
        self.assertEqual(self.write(True), 2)

    def test_off(self):
        self.assertEqual(self.write(False), 0)


class RewriteAutoSyncTests(AofTestCase, FsyncCounting):
    """BGREWRITEAOF of ~10 MB: two more fsyncs with the directive on."""

    def rewrite_fsyncs(self, enabled):
        self.server.settings.apply("aof-rewrite-incremental-fsync",
                                   ["yes" if enabled else "no"])
        self.aof.load()
        self.aof.start()
        client = connect(self.server)
        for i in range(40):
            self.call(client, "SET", "k%d" % i, "x" * (MB // 4))
        self.turn()
        calls = self.count_fsyncs()
        self.aof.rewrite()
        for _ in range(10000):
            if not self.aof.rewrite_in_progress:
                break
            self.clock.advance(0.01)
        self.assertFalse(self.aof.rewrite_in_progress)
        self.assertEqual(dict(self.aof.info_fields())[
            "aof_last_bgrewrite_status"], "ok")
        return len(calls)

    def test_on_adds_syncs(self):
        on = self.rewrite_fsyncs(True)
        self.aof.stop()
        self.make()
        shutil.rmtree(self.adir(), True)
        off = self.rewrite_fsyncs(False)
        self.assertEqual(on - off, 2)

"""rcluster/fastpoll.py: an EPollReactor's iteration without the legacy
log context still reads what is ready, drops a reader that raises, and
leaves other reactors alone."""
from __future__ import annotations

import socket

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import TestCase

from rcluster import fastpoll

try:
    from twisted.internet.epollreactor import EPollReactor
except ImportError:             # pragma: no cover - not Linux
    EPollReactor = None


class Reader:
    """The least an IReadDescriptor needs to be polled."""

    def __init__(self, sock, fail=False):
        self.sock = sock
        self.fail = fail
        self.got = b""
        self.lost = []

    def fileno(self):
        return self.sock.fileno()

    def logPrefix(self):
        return "Reader"

    def doRead(self):
        if self.fail:
            raise RuntimeError("boom")
        self.got += self.sock.recv(100)

    def connectionLost(self, reason):
        self.lost.append(reason)


class FastPollTests(TestCase):
    def setUp(self):
        if EPollReactor is None:
            raise self.skipTest("no epoll here")
        self.reactor = EPollReactor()
        self.addCleanup(self.reactor._poller.close)
        self.addCleanup(self.reactor.waker.connectionLost, None)

    def pair(self):
        a, b = socket.socketpair()
        a.setblocking(False)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        return a, b

    def test_installed_and_reads(self):
        self.assertTrue(fastpoll.install(self.reactor))
        self.assertEqual(self.reactor.doIteration.__func__,
                         fastpoll._do_poll)
        a, b = self.pair()
        reader = Reader(a)
        self.reactor.addReader(reader)
        self.reactor.doIteration(0)
        self.assertEqual(reader.got, b"")
        b.sendall(b"hello")
        self.reactor.doIteration(1)
        self.assertEqual(reader.got, b"hello")
        self.reactor.removeReader(reader)

    def test_a_reader_that_raises_is_dropped(self):
        fastpoll.install(self.reactor)
        a, b = self.pair()
        reader = Reader(a, fail=True)
        self.reactor.addReader(reader)
        b.sendall(b"x")
        self.reactor.doIteration(1)
        self.flushLoggedErrors(RuntimeError)
        self.assertEqual(len(reader.lost), 1)
        self.assertNotIn(reader, self.reactor.getReaders())

    def test_other_reactors_left_alone(self):
        memory = MemoryReactorClock()
        self.assertFalse(fastpoll.install(memory))
        self.assertFalse(hasattr(memory, "doIteration"))

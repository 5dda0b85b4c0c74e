"""rcluster-cluster's port check (rcluster/localcluster.py): a port held
by a listener is refused at once; one held by a closed connection's end
(TIME-WAIT) is waited for."""
from __future__ import annotations

import socket

from twisted.trial.unittest import TestCase

from rcluster import localcluster


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.said = []

    def sleep(self, seconds):
        self.now += seconds

    def clock(self):
        return self.now


# A node port must leave room for its bus port (+10000), as --base-port.
HIGHEST = 65535 - localcluster.BUS_PORT_OFFSET


def bound(sock) -> socket.socket:
    """sock bound to a free loopback port a node could have."""
    while True:
        sock.bind(("127.0.0.1", 0))
        if sock.getsockname()[1] <= HIGHEST:
            return sock
        sock.close()
        sock = socket.socket()


class BusyPortTests(TestCase):
    def listener(self):
        sock = bound(socket.socket())
        self.addCleanup(sock.close)
        sock.listen()
        return sock

    def time_wait_port(self) -> int:
        """A port whose only holder is a closed connection's end."""
        listener = self.listener()
        client = bound(socket.socket())
        port = client.getsockname()[1]
        client.connect(listener.getsockname())
        accepted, _ = listener.accept()
        client.close()          # the active close: this end goes TIME-WAIT
        accepted.close()
        return port

    def busy(self, port, timeout=5.0):
        fake = FakeTime()
        # ports are node ports: their bus ports (+10000) are checked too.
        busy = localcluster.busy_ports(
            [port], timeout=timeout, sleep=fake.sleep, clock=fake.clock,
            say=fake.said.append)
        return busy, fake

    def test_free(self):
        sock = bound(socket.socket())
        free = sock.getsockname()[1]
        sock.close()            # never connected: no TIME-WAIT
        busy, fake = self.busy(free)
        self.assertNotIn(free, busy)

    def test_a_listener_is_refused_at_once(self):
        port = self.listener().getsockname()[1]
        busy, fake = self.busy(port)
        self.assertIn(port, busy)
        self.assertEqual((fake.now, fake.said), (0.0, []))

    def test_time_wait_is_waited_for(self):
        port = self.time_wait_port()
        self.assertTrue(localcluster.port_in_use(port))
        self.assertFalse(localcluster.port_listened(port))
        busy, fake = self.busy(port, timeout=5.0)
        # Still held after the (fake) 5 s: reported, after one notice.
        self.assertIn(port, busy)
        self.assertEqual(fake.now, 5.0)
        self.assertEqual(len(fake.said), 1)
        self.assertIn("TIME-WAIT", fake.said[0])

"""Bounded output buffers on a real node: client-output-buffer-limit
(pubsub and normal classes) cuts off a client that doesn't read, with
Redis's log line, and the node's RSS stays bounded while 100 MB is
published; cluster-link-sendbuf-limit drops the bus link to a SIGSTOPped
peer (counted in CLUSTER INFO)."""
import os
import signal
import socket

from twisted.trial.unittest import TestCase

from tests.integration.harness import start_node, wait_for

MB = 1024 * 1024
LOG_LINE = "scheduled to be closed ASAP for overcoming of output buffer limits"


def rss(node) -> int:
    with open(f"/proc/{node.proc.pid}/statm") as fh:
        return int(fh.read().split()[1]) * 4096


def lazy_socket(port) -> socket.socket:
    """A connection that will never read (small receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


def log_text(node) -> str:
    with open(node.log_path, errors="replace") as fh:
        return fh.read()


class ClientOutputBufferTests(TestCase):
    def test_slow_subscriber_is_cut_off_and_rss_stays_bounded(self):
        node = start_node(self, directives=[
            ("client-output-buffer-limit", "pubsub 4mb 1mb 60")])
        r = node.client()
        sub = lazy_socket(node.port)
        self.addCleanup(sub.close)
        sub.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n")
        wait_for(lambda: r.pubsub_numsub("ch")[0][1] == 1, 15)
        start = rss(node)
        message = b"m" * (64 * 1024)
        receivers = []
        for _ in range(100 * MB // len(message) // 100):
            pipe = r.pipeline(transaction=False)
            for _ in range(100):
                pipe.publish("ch", message)
            receivers.extend(pipe.execute())
        # Cut off long before the 100 MB: the first publishes reached it,
        # the last ones nobody.
        self.assertEqual(receivers[0], 1)
        self.assertEqual(receivers[-1], 0)
        self.assertLess(receivers.count(1), 40 * MB // len(message))
        wait_for(lambda: LOG_LINE in log_text(node), 15)
        self.assertIn("sub=1", log_text(node))
        self.assertEqual(len(r.client_list()), 1)
        self.assertLess(rss(node) - start, 64 * MB)

    def test_pipelining_client_that_never_reads(self):
        node = start_node(self, directives=[
            ("client-output-buffer-limit", "normal 2mb 0 0")])
        r = node.client()
        r.set("big", b"v" * (256 * 1024))
        lazy = lazy_socket(node.port)
        self.addCleanup(lazy.close)
        request = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 100
        lazy.settimeout(10)
        try:
            for _ in range(10):      # 1000 replies: 256 MB unless cut off
                lazy.sendall(request)
        except OSError:
            pass                     # already dropped: as intended
        wait_for(lambda: LOG_LINE in log_text(node), 15)
        wait_for(lambda: len(r.client_list()) == 1, 15)
        self.assertTrue(r.ping())

    def test_normal_clients_are_unlimited_by_default(self):
        node = start_node(self)
        r = node.client()
        self.assertEqual(r.config_get("client-output-buffer-limit"),
                         {"client-output-buffer-limit":
                          "normal 0 0 0 slave 268435456 67108864 60 "
                          "pubsub 33554432 8388608 60"})
        r.set("big", b"v" * MB)
        pipe = r.pipeline(transaction=False)
        for _ in range(50):
            pipe.get("big")
        self.assertEqual(len(pipe.execute()), 50)
        self.assertNotIn(LOG_LINE, log_text(node))


class ClusterLinkBufferTests(TestCase):
    def test_sigstopped_bus_peer_is_dropped(self):
        from tests.integration.test_cluster_formation import form, start_nodes
        a, b = start_nodes(self, 2, directives=[
            ("cluster-node-timeout", "60000"),
            ("cluster-link-sendbuf-limit", str(1 * MB))])
        form(self, [a, b])
        r = a.client()
        os.kill(b.proc.pid, signal.SIGSTOP)
        self.addCleanup(lambda: b.proc.poll() is None and
                        os.kill(b.proc.pid, signal.SIGCONT))
        start = rss(a)
        message = b"m" * (64 * 1024)

        def exceeded():
            text = r.execute_command("CLUSTER", "INFO").decode()
            return int(text.split("total_cluster_links_buffer_limit_"
                                  "exceeded:")[1].split()[0])

        # PUBLISH goes to every node over the bus: the link to b fills.
        for _ in range(100 * MB // len(message) // 100):
            pipe = r.pipeline(transaction=False)
            for _ in range(100):
                pipe.publish("ch", message)
            pipe.execute()
            if exceeded():
                break
        wait_for(lambda: exceeded() >= 1, 15)
        self.assertIn("due to exceeding send buffer memory limit",
                      log_text(a))
        self.assertLess(rss(a) - start, 64 * MB)
        links = a.cli("cluster", "links").split()
        sizes = [int(links[i + 1]) for i, field in enumerate(links)
                 if field == "send-buffer-allocated"]
        self.assertTrue(sizes)
        self.assertTrue(all(size <= 8 * MB for size in sizes), sizes)
        os.kill(b.proc.pid, signal.SIGCONT)
        self.assertTrue(r.ping())

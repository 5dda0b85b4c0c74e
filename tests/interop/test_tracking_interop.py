"""Client-side caching, side by side: one script of commands - a RESP3
tracking client, a RESP2 tracking client redirecting to a RESP2 pub/sub
client, a BCAST client with prefixes and NOLOOP, an OPTIN client, and a
writer - runs against Debian's redis-server 7.0.15 and against rcluster,
and every byte each client receives (replies, invalidation pushes, the
``__redis__:invalidate`` messages) must be the same."""
from __future__ import annotations

import re
import socket
import time

from twisted.trial.unittest import TestCase

from tests.integration.harness import have, start_node

CHANNEL = "__redis__:invalidate"
# What PING answers: the marker that everything before it has arrived.
PONG = b"+PONG\r\n"
PUBSUB_PONG = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"


def request(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        arg = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(out)


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        self.pong = PONG

    def send(self, *args):
        self.sock.sendall(request(*args))

    def drain(self) -> bytes:
        """Everything received up to the answer of a PING sent now (the
        server has sent all it had for us before answering it)."""
        try:
            self.sock.sendall(request("PING"))
        except OSError:
            raise ConnectionError("closed")
        data = b""
        while not data.endswith(self.pong):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data[:-len(self.pong)]

    def command(self, *args) -> bytes:
        self.send(*args)
        return self.drain()

    def close(self):
        self.sock.close()


# Clients: t RESP3 tracking, t2 RESP2 tracking redirected to r (RESP2,
# subscribed to the channel), b RESP3 BCAST, o RESP3 OPTIN, x RESP3 (a
# redirect target, killed), w the writer (RESP2).
# The script: (client, command...), (client, (command...), ...) for a
# pipeline, or ("sleep", seconds).  Every client drains what it received
# after each step.
SCRIPT = [
    ("t", "CLIENT", "TRACKING", "on"),
    ("r", "SUBSCRIBE", CHANNEL),
    ("t2", "CLIENT", "TRACKING", "on", "REDIRECT", "{r}"),
    ("b", "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:",
     "PREFIX", "obj:", "NOLOOP"),
    ("o", "CLIENT", "TRACKING", "on", "OPTIN"),
    ("t", "CLIENT", "TRACKING", "on", "BCAST"),
    ("t", "CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"),
    ("b", "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:1"),
    ("t", "GET", "user:1"),
    ("t", "MGET", "user:2", "obj:1", "user:1"),
    ("t2", "GET", "user:1"),
    ("t2", "MGET", "a", "b"),
    ("o", "GET", "o1"),
    # Pipelined: the drain's PING would be "the next command".
    ("o", ("CLIENT", "CACHING", "yes"), ("GET", "o2"), ("GET", "o3")),
    ("w", "SET", "user:1", "x"),
    ("w", "MSET", "user:2", "1", "obj:1", "2", "a", "3", "o1", "1",
     "o2", "2", "o3", "3"),
    ("w", "SET", "other", "1"),
    ("t", "GET", "user:1"),
    ("t", "SET", "user:1", "y"),
    ("b", "SET", "user:9", "1"),
    ("b", "MSET", "obj:2", "1", "user:3", "2"),
    ("w", "SET", "user:3", "3"),
    ("t", "CLIENT", "TRACKINGINFO"),
    ("t2", "CLIENT", "TRACKINGINFO"),
    ("b", "CLIENT", "TRACKINGINFO"),
    ("o", "CLIENT", "TRACKINGINFO"),
    ("w", "SET", "e", "1", "PX", "100"),
    ("t", "GET", "e"),
    ("t2", "GET", "e"),
    ("sleep", 0.5),
    ("w", "GET", "e"),
    ("t", "GET", "k"),
    ("w", "INFO", "stats"),          # only the tracking_* lines are kept
    ("w", "FLUSHALL"),
    ("t", "GET", "k"),
    ("t", "FLUSHDB"),
    ("t", "CLIENT", "TRACKING", "on", "NOLOOP"),
    ("t", "GET", "k"),
    ("t", "SET", "k", "1"),
    ("w", "CLIENT", "KILL", "ID", "{r}"),
    ("t2", "GET", "k"),
    ("w", "SET", "k", "2"),
    ("t2", "CLIENT", "TRACKINGINFO"),
    ("t", "CLIENT", "TRACKING", "on", "REDIRECT", "{t2}"),
    ("t", "GET", "k"),
    ("w", "SET", "k", "3"),
    ("t", "CLIENT", "TRACKING", "on", "REDIRECT", "{x}"),
    ("t", "GET", "k"),
    ("w", "SET", "k", "4"),
    ("t", "GET", "k"),
    ("w", "CLIENT", "KILL", "ID", "{x}"),
    ("w", "SET", "k", "5"),
    ("t", "CLIENT", "INFO"),         # only flags= and redir= are kept
    ("t", "RESET"),
    ("w", "INFO", "clients"),
]


def run_script(port) -> list:
    clients = {name: Conn(port)
               for name in ("t", "t2", "r", "b", "o", "x", "w")}
    try:
        ids = {}
        for name, conn in clients.items():
            conn.send("CLIENT", "ID")
            ids[name] = int(conn.drain()[1:-2])
        for name in ("t", "b", "o", "x"):
            clients[name].command("HELLO", "3")
        log = []
        for step in SCRIPT:
            if step[0] == "sleep":
                time.sleep(step[1])
                continue
            name, *args = step
            pipeline = args if isinstance(args[0], tuple) else [args]
            conn = clients[name]
            for command in pipeline:
                args = [arg.format(**ids) for arg in command]
                conn.send(*args)
            if args[0] == "SUBSCRIBE":
                conn.pong = PUBSUB_PONG
            for other in clients:
                if clients[other] is None:
                    continue
                try:
                    received = clients[other].drain()
                except ConnectionError:
                    clients[other].close()
                    clients[other] = None     # killed by the script
                    received = b"<closed>"
                if args[0] == "INFO" and other == name:
                    received = b"\n".join(
                        line for line in received.split(b"\r\n")
                        if line.startswith(b"tracking_"))
                elif args[:2] == ["CLIENT", "INFO"] and other == name:
                    received = b" ".join(re.findall(
                        rb"(?:flags|redir)=\S+", received))
                log.append((" ".join(map(str, step[1:])), other,
                            normalize(received, ids)))
        return log
    finally:
        for conn in clients.values():
            if conn is not None:
                conn.close()


def normalize(data: bytes, ids: dict) -> bytes:
    """Client ids differ between the two servers: name them (in integer
    replies and CLIENT INFO's redir=)."""
    by_id = {str(number).encode(): name.encode()
             for name, number in ids.items()}

    def name(match):
        number = match.group(2)
        if number in by_id and int(number) > 1:
            return match.group(1) + b"<" + by_id[number] + b">"
        return match.group(0)
    return re.sub(rb"((?:(?<=\n)|^):|redir=)(\d+)(?=\r\n|$)", name, data)


class TrackingInteropTests(TestCase):
    def setUp(self):
        if not have("redis-server"):
            self.skipTest("redis-server not installed")

    def test_same_messages_as_redis(self):
        redis_node = start_node(self, binary="redis-server")
        rcluster_node = start_node(self)
        expected = run_script(redis_node.port)
        actual = run_script(rcluster_node.port)
        self.assertEqual(len(actual), len(expected))
        for want, got in zip(expected, actual):
            self.assertEqual(got, want)
        # The script did exercise what it claims to.
        received = b"".join(data for _, _, data in expected)
        for needle in (b">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\nuser:1",
                       b"$7\r\nmessage\r\n$20\r\n__redis__:invalidate",
                       b"invalidate\r\n_\r\n", b"tracking-redir-broken",
                       b"invalidate\r\n*1\r\n$5\r\nobj:1\r\n"):
            self.assertIn(needle, received)

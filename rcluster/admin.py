"""A small blocking RESP client for admin tools (rcluster-cluster...).

Tools run outside the reactor, one command at a time, so a plain socket
and hiredis' reply parser are all they need - no client library at run
time.
"""
from __future__ import annotations

import socket

import hiredis


class ReplyError(Exception):
    """An error reply from the server."""


class AdminClient:
    def __init__(self, host="127.0.0.1", port=6379, timeout=5.0):
        self.address = (host, port)
        self.sock = socket.create_connection(self.address, timeout)
        self.reader = hiredis.Reader(replyError=ReplyError)

    def call(self, *args):
        """Send a command and return its reply (raise an error reply)."""
        self.send(*args)
        return self.read()

    def send(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            if not isinstance(arg, bytes):
                arg = str(arg).encode()
            parts.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
        self.sock.sendall(b"".join(parts))

    def read(self):
        """The next reply (or pushed message, for a subscriber); raises
        the error replies, and socket.timeout past the timeout."""
        while True:
            reply = self.reader.gets()
            if reply is not False:
                break
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"{self.address[0]}:{self.address[1]} "
                                      "closed the connection")
            self.reader.feed(data)
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def info_fields(text: bytes) -> dict:
    """INFO / CLUSTER INFO text -> {field: value} (strings)."""
    fields = {}
    for line in text.decode(errors="replace").splitlines():
        if ":" in line and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields

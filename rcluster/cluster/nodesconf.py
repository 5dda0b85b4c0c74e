"""nodes.conf: the CLUSTER NODES format, and the locked file that holds it.

A line per node, as CLUSTER NODES prints it::

    <name> <ip>:<port>@<cport>[,<hostname>] <flags> <master|-> <ping_sent>
        <pong_received> <configEpoch> <connected|disconnected> <slots...>

where slots are ``N`` or ``A-B`` and, for myself only, ``[N->-<name>]``
(migrating) or ``[N-<-<name>]`` (importing); then a last line
``vars currentEpoch N lastVoteEpoch N``.

The file is locked with flock() for the life of the process, so two nodes
can't share it.  Saving rewrites it in place through a new descriptor
(padding with newlines if the old content was longer, then truncating),
as Redis 7.0 does: the lock stays valid because it belongs to the
descriptor opened at start-up.  A file that can't be parsed stops the node
with a clear message; it is never silently replaced.
"""
from __future__ import annotations

import fcntl
import os

from rcluster.cluster.messages import (NODE_FAIL, NODE_HANDSHAKE, NODE_MYSELF,
                                       SLOTS)
from rcluster.cluster.node import (FLAG_BY_NAME, flags_text, ranges_of,
                                   valid_name)
from rcluster.resp.codec import split_args

PORT_INCR = 10000


class NodesConfError(Exception):
    """nodes.conf can't be used; the text is what the operator reads."""


# -- rendering ----------------------------------------------------------------

slot_ranges = ranges_of     # [(start, end), ...] of an ascending slot list


def describe_node(state, node, use_pport: bool = False) -> str:
    """One CLUSTER NODES line (without the newline)."""
    port = node.pport if use_pport and node.pport else node.port
    address = f"{node.ip}:{port}@{node.cport}"
    if node.hostname:
        address += "," + node.hostname
    master = node.replicaof
    epoch = master.config_epoch if node.is_replica and master else \
        node.config_epoch
    linked = node.link is not None or node.flags & NODE_MYSELF
    parts = [node.name, address, flags_text(node.flags),
             master.name if master else "-", str(node.ping_sent),
             str(node.pong_received), str(epoch),
             "connected" if linked else "disconnected"]
    for start, end in node.slot_ranges:
        parts.append(str(start) if start == end else f"{start}-{end}")
    if node.flags & NODE_MYSELF:
        for slot in sorted(set(state.migrating) | set(state.importing)):
            if slot in state.migrating:
                parts.append(f"[{slot}->-{state.migrating[slot].name}]")
            else:
                parts.append(f"[{slot}-<-{state.importing[slot].name}]")
    return " ".join(parts)


def describe_nodes(state, exclude_flags: int = 0, use_pport: bool = False) -> str:
    """CLUSTER NODES: a line per node, each ending with a newline."""
    return "".join(describe_node(state, node, use_pport) + "\n"
                   for node in state.nodes.values()
                   if not node.flags & exclude_flags)


def render(state) -> str:
    """The content of nodes.conf (handshake nodes are not saved)."""
    return describe_nodes(state, NODE_HANDSHAKE) + (
        f"vars currentEpoch {state.current_epoch} "
        f"lastVoteEpoch {state.last_vote_epoch}\n")


# -- loading ------------------------------------------------------------------

class _Corrupt(Exception):
    pass


def _int(text: str, what: str) -> int:
    if not text.isdigit():
        raise _Corrupt(f"{what} {text!r} is not a number")
    return int(text)


def _slot(text: str) -> int:
    slot = _int(text, "slot")
    if slot >= SLOTS:
        raise _Corrupt(f"slot {slot} out of range")
    return slot


def load(state, text: str, path: str = "nodes.conf"):
    """Fill an empty state from nodes.conf content; raises NodesConfError
    when the content is not a valid configuration."""
    lineno = 0
    try:
        for lineno, line in enumerate(text.split("\n"), 1):
            if line.strip():
                _load_line(state, line)
        if state.myself is None:
            lineno = 0
            raise _Corrupt("no line is flagged 'myself'")
    except _Corrupt as err:
        where = f" (line {lineno})" if lineno else ""
        raise NodesConfError(
            f'Unrecoverable error: corrupted cluster config file "{path}".'
            f" {err}{where}") from None
    # Protection against hand edits: currentEpoch is never behind.
    state.current_epoch = max(state.current_epoch, state.max_epoch())


def _node(state, name: str):
    if not valid_name(name):
        raise _Corrupt(f"invalid node name {name!r}")
    node = state.nodes.get(name)
    if node is None:
        node = state.create_node(name, 0)
        state.add_node(node)
    return node


def _load_line(state, line: str):
    argv = split_args(line.encode("utf-8", "surrogateescape"))
    if argv is None:
        raise _Corrupt("unbalanced quotes")
    argv = [a.decode("utf-8", "surrogateescape") for a in argv]
    if not argv:
        return
    if argv[0].lower() == "vars":
        _load_vars(state, argv)
        return
    if len(argv) < 8:
        raise _Corrupt(f"a node line needs 8 fields, this one has {len(argv)}")
    node = _node(state, argv[0])
    _load_address(node, argv[1])
    _load_flags(state, node, argv[2])
    if argv[3] != "-":
        master = _node(state, argv[3])
        node.replicaof = master
        master.add_replica(node)
    now = state.now()
    if _int(argv[4], "ping_sent"):
        node.ping_sent = now
    if _int(argv[5], "pong_received"):
        node.pong_received = now
    epoch = _int(argv[6], "configEpoch")
    node.config_epoch = 0 if node.is_replica and node.replicaof else epoch
    for arg in argv[8:]:
        _load_slots(state, node, arg)


def _load_vars(state, argv):
    if len(argv) % 2 == 0:
        raise _Corrupt("'vars' needs name value pairs")
    for name, value in zip(argv[1::2], argv[2::2]):
        if name.lower() == "currentepoch":
            state.current_epoch = _int(value, "currentEpoch")
        elif name.lower() == "lastvoteepoch":
            state.last_vote_epoch = _int(value, "lastVoteEpoch")
        # Redis skips unknown variables (with a warning).


def _load_address(node, text: str):
    address, _, hostname = text.partition(",")
    host, sep, ports = address.rpartition(":")
    if not sep:
        raise _Corrupt(f"address {text!r} has no port")
    port, sep, cport = ports.partition("@")
    node.ip = host
    node.hostname = hostname
    node.port = _int(port, "port")
    node.cport = _int(cport, "bus port") if sep else node.port + PORT_INCR


def _load_flags(state, node, text: str):
    for name in text.split(","):
        bit = FLAG_BY_NAME.get(name.lower())
        if bit is None:
            raise _Corrupt(f"unknown flag {name!r}")
        if bit == NODE_MYSELF:
            if state.myself is not None:
                raise _Corrupt("two nodes are flagged 'myself'")
            state.myself = node
        if bit == NODE_FAIL:
            node.fail_time = state.now()
        node.flags |= bit


def _load_slots(state, node, arg: str):
    if arg.startswith("["):
        # [slot->-name] migrating, [slot-<-name] importing.
        if not arg.endswith("]") or ("->-" not in arg and "-<-" not in arg):
            raise _Corrupt(f"bad open slot {arg!r}")
        migrating = "->-" in arg
        slot_text, name = arg[1:-1].split("->-" if migrating else "-<-", 1)
        slot, other = _slot(slot_text), _node(state, name)
        (state.migrating if migrating else state.importing)[slot] = other
        return
    start, sep, stop = arg.partition("-")
    start = _slot(start)
    stop = _slot(stop) if sep else start
    for slot in range(start, stop + 1):
        state.add_slot(node, slot)


# -- the file -----------------------------------------------------------------

class ConfigFile:
    """The locked nodes.conf of this node."""

    def __init__(self, path: str):
        self.path = path
        self.lock_fd = None

    def lock(self):
        """Take the exclusive lock for the life of the process (the file is
        created empty if missing)."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC,
                         0o644)
        except OSError as err:
            raise NodesConfError(f"Can't open {self.path} in order to "
                                 f"acquire a lock: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise NodesConfError(
                f"Sorry, the cluster configuration file {self.path} is "
                "already used by a different Redis Cluster node. Please make "
                "sure that different nodes use different cluster "
                "configuration files.") from None
        except OSError as err:
            os.close(fd)
            raise NodesConfError(f"Impossible to lock {self.path}: "
                                 f"{err.strerror}") from None
        self.lock_fd = fd

    def read(self):
        """The content, or None when there is no configuration yet (no
        file, or the empty file the lock created)."""
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise NodesConfError(f"Loading the cluster node config from "
                                 f"{self.path}: {err.strerror}") from None
        if not data:
            return None
        return data.decode("utf-8", "surrogateescape")

    def save(self, text: str, fsync: bool = True):
        """Write in place: one write (padded with newlines over a longer
        old content), fsync, then truncate the padding."""
        data = text.encode("utf-8", "surrogateescape")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            padded = data + b"\n" * (size - len(data)) if size > len(data) \
                else data
            written = os.write(fd, padded)
            if written != len(padded):
                raise OSError(f"short write ({written} of {len(padded)} bytes)")
            if fsync:
                os.fsync(fd)
            if len(padded) != len(data):
                try:
                    os.ftruncate(fd, len(data))
                except OSError:
                    pass            # only padding is left over: harmless
        finally:
            os.close(fd)

    def close(self):
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

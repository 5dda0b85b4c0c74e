"""Client redirection: Redis Cluster's getNodeByQuery + clusterRedirectClient.

``Router(state, server)`` is installed as ``server.router``: for every
keyed command (and EXEC, for the whole transaction) it decides whether this
node serves the request, and otherwise returns the error reply Redis
gives: ``-MOVED``, ``-ASK``, ``-TRYAGAIN``, ``-CROSSSLOT`` or one of the
``-CLUSTERDOWN`` texts.  Returning None means "run it here".

Nearly every request is the common case - one key, in a slot this node
serves and that isn't migrating, while the cluster is ok - so that case
takes a fast path that hashes argv[1] and checks just those facts; the
rest goes through the full getNodeByQuery logic.
"""
from __future__ import annotations

from rcluster.cluster.keyslot import keyslot
from rcluster.commands.table import InvalidKeys
from rcluster.resp.codec import Error

CROSSSLOT = Error("CROSSSLOT Keys in request don't hash to the same slot")
TRYAGAIN = Error("TRYAGAIN Multiple keys request during rehashing of slot")
DOWN = Error("CLUSTERDOWN The cluster is down")
DOWN_RO = Error("CLUSTERDOWN The cluster is down and only accepts read commands")
UNBOUND = Error("CLUSTERDOWN Hash slot not served")


def _shard_pubsub(cmd) -> bool:
    """SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH: flagged pubsub, with keys (the
    router sees keyed commands only; Redis tests CMD_PUBSUB too)."""
    return "pubsub" in cmd.flags


class Router:
    def __init__(self, state, server):
        self.state = state
        self.server = server
        self._single_key: dict = {}     # Command -> its only key is argv[1]

    def __call__(self, c, cmd, argv):
        asking = c.asking
        if c.multi is None:
            # ASKING is good for one command (Redis resets it after each
            # command outside MULTI); keyless commands don't reach here,
            # which is the only difference.
            c.asking = False
            if self._served_here(cmd, argv):
                return None
            if (asking or "asking" in cmd.flags) and \
                    self._asked_importing(cmd, argv):
                return None
        return self._route(c, cmd, argv, asking or "asking" in cmd.flags)

    def _served_here(self, cmd, argv) -> bool:
        """The fast path: the command's one key is argv[1], its slot is
        ours and not migrating, and the cluster is ok.  Then neither
        ASKING nor READONLY nor an importing slot changes the answer."""
        single = self._single_key.get(cmd)
        if single is None:
            single = self._single_key[cmd] = _only_key_is_first_arg(cmd)
        if not single:
            return False
        return self.state.serves_directly(keyslot(argv[1]))

    def _asked_importing(self, cmd, argv) -> bool:
        """The other fast path (a reshard's every RESTORE-ASKING): with
        ASKING, a command whose one key is argv[1] runs here when its slot
        is being imported from another master, the cluster is ok and no
        key is in flight - what _route answers then, without its walk."""
        state = self.state
        if not self._single_key.get(cmd) or not state.is_ok or \
                getattr(state, "busy_slots", None):
            return False
        slot = keyslot(argv[1])
        owner = state.slot_owner(slot)
        me = state.myself
        return owner is not None and owner is not me and me.is_master and \
            state.importing_from(slot) is not None

    def _route(self, c, cmd, argv, asking):
        state = self.state
        if cmd.name == "exec":
            if c.multi is None:
                return None          # EXEC will answer its own error
            calls = c.multi
        else:
            calls = ((cmd, argv),)
        if getattr(state, "busy_slots", None):
            # A write to a key a MIGRATE has in flight, or to a slot an
            # atomic move is cutting over, waits (False: the client is
            # parked and runs the command - or the EXEC - again later).
            migrations = self.server.extensions.get("migration")
            if migrations is not None and migrations.park(c, calls, argv):
                return False
        shard_pubsub = _shard_pubsub(cmd)
        firstkey = None
        slot = 0
        owner = None
        multiple = migrating = importing = False
        missing = existing = 0
        lookup = self.server.keyspace.lookup
        for qcmd, qargv in calls:
            try:
                positions = qcmd.key_positions(qargv, include_not_keys=True)
            except InvalidKeys:
                positions = ()
            for pos in positions:
                key = qargv[pos]
                if firstkey is None:
                    firstkey = key
                    slot = keyslot(key)
                    owner = state.slot_owner(slot)
                    if owner is None:
                        return UNBOUND
                    if owner is state.myself and \
                            state.migrating_to(slot) is not None:
                        migrating = True
                    elif state.importing_from(slot) is not None and \
                            state.myself.is_master:
                        # (A replica records its master's import, from
                        # the stream, but serves nothing of it.)
                        importing = True
                elif key != firstkey:
                    if keyslot(key) != slot:
                        return CROSSSLOT
                    multiple = True
                if (migrating or importing) and not shard_pubsub:
                    if lookup(key) is None:
                        missing += 1
                    else:
                        existing += 1
        if owner is None:
            return None              # no keys at all: served here
        is_write = any("write" in q.flags for q, _ in calls)
        settings = self.server.settings
        if not state.is_ok:
            if shard_pubsub:
                if not settings.cluster_allow_pubsubshard_when_down:
                    return DOWN
            elif not settings.cluster_allow_reads_when_down:
                return DOWN
            elif is_write:
                return DOWN_RO
        if (migrating or importing) and cmd.name == "migrate":
            return None
        if migrating and missing:
            if existing:
                return TRYAGAIN
            return self._redirect(c, "ASK", slot, state.migrating_to(slot))
        if importing and asking:
            if multiple and missing:
                return TRYAGAIN
            return None
        myself = state.myself
        if (c.readonly or shard_pubsub) and not is_write and \
                not myself.is_master and myself.replicaof is owner:
            return None
        if owner is myself:
            return None
        return self._redirect(c, "MOVED", slot, owner)

    def _redirect(self, c, kind, slot, node):
        settings = self.server.settings
        port = node.port
        # A plain-text client of a TLS cluster is sent to the plain port.
        if settings.tls_cluster and not c.tls and node.pport:
            port = node.pport
        return Error(f"{kind} {slot} {preferred_endpoint(settings, node)}:{port}")


def _only_key_is_first_arg(cmd) -> bool:
    """GET, SET, HSET, LPUSH...: one key spec, exactly argv[1] (the
    command table's arity check guarantees argv[1] is there)."""
    specs = cmd.key_specs
    if cmd.get_keys is not None or len(specs) != 1 or \
            _shard_pubsub(cmd) or cmd.name == "exec":
        return False
    spec = specs[0]
    return spec.index == 1 and spec.lastkey == 0 and \
        spec.keynumidx is None and "incomplete" not in spec.flags and \
        (cmd.arity >= 2 or cmd.arity <= -2)


def preferred_endpoint(settings, node) -> str:
    """The address Redis advertises for a node (cluster-preferred-endpoint-type)."""
    kind = settings.cluster_preferred_endpoint_type
    if kind == "ip":
        return node.ip
    if kind == "hostname":
        return node.hostname or "?"
    return "?"

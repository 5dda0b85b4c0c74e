"""CLUSTER and its subcommands, ASKING, READONLY, READWRITE.

The cluster state is ``c.server.cluster`` (a ClusterState, the model) and
its engine ``c.server.cluster_engine`` (both installed by the cluster
service).  These handlers read the state and check arguments with Redis's
texts; changes go through the engine's operations, which save nodes.conf
before the reply goes out.
"""
from __future__ import annotations

import os

from rcluster.cluster import nodesconf
from rcluster.cluster.keyslot import keyslot
from rcluster.cluster.messages import SLOTS, message_type_name
from rcluster.cluster.state import bus_port
from rcluster.commands.common import NOT_INT, SYNTAX, parse_int
from rcluster.commands.debug import debug_subcommand
from rcluster.commands.table import CommandError, command, container
from rcluster.memory import link_send_buffer
from rcluster.replication.backlog import encode_command
from rcluster.replication.replica import SETSLOT_CAPA
from rcluster.replication.service import replication
from rcluster.resp.codec import OK, Map, Status, Verbatim

DISABLED = "ERR This instance has cluster support disabled"
BAD_SLOT = "ERR Invalid or out of range slot"
_NONDET = ("nondeterministic_output",)
_ADMIN = "no_async_loading admin stale"

container("cluster", "cluster", "A container for cluster commands",
          since="3.0.0")


def _sub(name, arity, flags="stale", since="3.0.0", complexity="O(1)", **kw):
    """A CLUSTER subcommand row."""
    return command(name, arity, flags, group="cluster", since=since,
                   complexity=complexity, parent="cluster", **kw)


def cluster_of(c):
    state = c.server.cluster
    if state is None or not c.server.settings.cluster_enabled:
        raise CommandError(DISABLED)
    return state


def engine_of(c):
    cluster_of(c)
    return c.server.cluster_engine


def _syntax_error(argv):
    return CommandError(
        "ERR unknown subcommand or wrong number of arguments for '%s'. "
        "Try CLUSTER HELP." % argv[1].decode("utf-8", "replace")[:128])


def _text(arg: bytes) -> str:
    return arg.decode("utf-8", "replace")


def _node_or_error(state, arg, error="ERR Unknown node %s"):
    node = state.lookup(arg)
    if node is None:
        raise CommandError(error % _text(arg))
    return node


def _slot(arg) -> int:
    slot = parse_int(arg, BAD_SLOT)
    if not 0 <= slot < SLOTS:
        raise CommandError(BAD_SLOT)
    return slot


def _done(c, *todo):
    engine_of(c).done(*todo)
    return OK


# -- help -----------------------------------------------------------------------

HELP = (
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to current node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slots which are between <start-slot> and <end-slot> to current node.",
    "BUMPEPOCH",
    "    Advance the cluster config epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from current node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
    "FAILOVER [FORCE|TAKEOVER]",
    "    Promote current replica node to being a master.",
    "FORGET <node-id>",
    "    Remove a node from the cluster.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "FLUSHSLOTS",
    "    Delete current node own slots information.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MEET <ip> <port> [<bus-port>]",
    "    Connect nodes into a working cluster.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICATE <node-id>",
    "    Configure current node as replica to <node-id>.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set config epoch of current node.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Set slot state.",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
)


@_sub("help", 2, "loading stale", since="5.0.0",
      summary="Show helpful text about the different subcommands")
def cluster_help(c, argv):
    cluster_of(c)
    lines = ["%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
             % _text(argv[0]).upper(), *HELP, "HELP", "    Prints this help."]
    return [Status(line) for line in lines]


# -- membership ---------------------------------------------------------------

@_sub("meet", -4, _ADMIN,
      summary="Force a node cluster to handshake with another node",
      history=(("4.0.0", "Added the optional `cluster_bus_port` argument."),))
def cluster_meet(c, argv):
    state = cluster_of(c)
    if len(argv) > 5:
        raise _syntax_error(argv)
    port = parse_int(argv[3], "ERR Invalid TCP base port specified: %s"
                     % _text(argv[3]))
    if len(argv) == 5:
        cport = parse_int(argv[4], "ERR Invalid TCP bus port specified: %s"
                          % _text(argv[4]))
    else:
        cport = bus_port(c.server.settings, port)
    try:
        state.start_handshake(_text(argv[2]), port, cport)
    except ValueError:
        raise CommandError("ERR Invalid node address specified: %s:%s"
                           % (_text(argv[2]), _text(argv[3])))
    return OK


@_sub("forget", 3, _ADMIN, summary="Remove a node from the nodes table")
def cluster_forget(c, argv):
    state = cluster_of(c)
    node = _node_or_error(state, argv[2])
    if node is state.myself:
        raise CommandError("ERR I tried hard but I can't forget myself...")
    if state.myself.is_replica and state.myself.replicaof is node:
        raise CommandError("ERR Can't forget my master!")
    state.blacklist_add(node)
    state.del_node(node)
    return _done(c)


@_sub("reset", -2, "admin stale noscript", summary="Reset a Redis Cluster node",
      complexity="O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect.")
def cluster_reset(c, argv):
    state = cluster_of(c)
    if len(argv) > 3:
        raise _syntax_error(argv)
    hard = False
    if len(argv) == 3:
        option = argv[2].lower()
        if option not in (b"hard", b"soft"):
            raise CommandError(SYNTAX)
        hard = option == b"hard"
    if state.myself.is_master and state.host.db_size():
        raise CommandError("ERR CLUSTER RESET can't be called with master "
                           "nodes containing keys")
    state.reset(hard)
    return _done(c, 0)


@_sub("myid", 2, summary="Return the node id")
def cluster_myid(c, argv):
    return cluster_of(c).myself.name.encode()


@_sub("myshardid", 2, since="7.2.0", tips=_NONDET,
      summary="Return the node shard id")
def cluster_myshardid(c, argv):
    # Redis 7.2 keeps a random shard id per shard; ours is the name of the
    # shard's master, which every node of the shard agrees on.
    me = cluster_of(c).myself
    return (me.master or me).name.encode()


# -- views ----------------------------------------------------------------------

def _use_pport(c) -> bool:
    """A TLS cluster shows plaintext ports to plaintext clients."""
    return bool(c.server.settings.tls_cluster and not c.tls)


@_sub("nodes", 2, tips=_NONDET, summary="Get Cluster config for the node",
      complexity="O(N) where N is the total number of Cluster nodes")
def cluster_nodes(c, argv):
    state = cluster_of(c)
    return Verbatim(nodesconf.describe_nodes(state, 0, _use_pport(c)).encode())


@_sub("replicas", 3, "admin stale", since="5.0.0", tips=_NONDET,
      summary="List replica nodes of the specified master node")
def cluster_replicas(c, argv):
    state = cluster_of(c)
    node = _node_or_error(state, argv[2])
    if node.is_replica:
        raise CommandError("ERR The specified node is not a master")
    return [nodesconf.describe_node(state, r, _use_pport(c)).encode()
            for r in node.replicas]


@_sub("slaves", 3, "admin stale", tips=_NONDET,
      summary="List replica nodes of the specified master node",
      doc_flags=("deprecated",), deprecated_since="5.0.0",
      replaced_by="`CLUSTER REPLICAS`")
def cluster_slaves(c, argv):
    return cluster_replicas(c, argv)


@_sub("info", 2, tips=_NONDET, summary="Provides info about Redis Cluster node state")
def cluster_info(c, argv):
    return Verbatim(info_text(cluster_of(c)).encode())


def info_text(state) -> str:
    assigned = ok = pfail = fail = 0
    # A node's numslots counts exactly its slots in the table: no loop
    # over the 16384 slots.
    for node in state.nodes.values():
        count = node.numslots
        assigned += count
        if node.failed:
            fail += count
        elif node.timed_out:
            pfail += count
        else:
            ok += count
    me = state.myself
    my_epoch = me.replicaof.config_epoch if me.is_replica and me.replicaof \
        else me.config_epoch
    lines = [
        "cluster_state:" + ("ok" if state.is_ok else "fail"),
        f"cluster_slots_assigned:{assigned}",
        f"cluster_slots_ok:{ok}",
        f"cluster_slots_pfail:{pfail}",
        f"cluster_slots_fail:{fail}",
        f"cluster_known_nodes:{len(state.nodes)}",
        f"cluster_size:{state.size}",
        f"cluster_current_epoch:{state.current_epoch}",
        f"cluster_my_epoch:{my_epoch}",
    ]
    for direction, counts in (("sent", state.stats_sent),
                              ("received", state.stats_received)):
        for msg_type, count in enumerate(counts):
            if count:
                lines.append(f"cluster_stats_messages_"
                             f"{message_type_name(msg_type)}_{direction}:{count}")
        lines.append(f"cluster_stats_messages_{direction}:{sum(counts)}")
    lines.append("total_cluster_links_buffer_limit_exceeded:"
                 f"{state.links_buffer_limit_exceeded}")
    return "\r\n".join(lines) + "\r\n"


def _endpoint_reply(c, node) -> list:
    """[endpoint, port, id, {other endpoints}] - CLUSTER SLOTS entries."""
    kind = c.server.settings.cluster_preferred_endpoint_type
    if kind == "ip":
        endpoint = node.ip.encode()
    elif kind == "hostname":
        endpoint = (node.hostname or "?").encode()
    else:
        endpoint = None
    extra = []
    if kind != "ip":
        extra.append((b"ip", node.ip.encode()))
    if kind != "hostname" and node.hostname:
        extra.append((b"hostname", node.hostname.encode()))
    port = node.pport if _use_pport(c) and node.pport else node.port
    return [endpoint, port, node.name.encode(), Map(extra)]


def _replica_available(state, node) -> bool:
    """Listed by CLUSTER SLOTS: not failed and done with its first sync."""
    if node.failed:
        return False
    offset = state.host.repl_offset() if node.is_myself else node.repl_offset
    return offset != 0


def _slot_runs(state):
    """(start, end, node) for each run of slots served by one node."""
    runs = []
    for slot, node in enumerate(state.slots):
        if node is None:
            continue
        if runs and runs[-1][2] is node and runs[-1][1] == slot - 1:
            runs[-1][1] = slot
        else:
            runs.append([slot, slot, node])
    return runs


@_sub("slots", 2, tips=_NONDET, summary="Get array of Cluster slot to node mappings",
      complexity="O(N) where N is the total number of Cluster nodes",
      doc_flags=("deprecated",), deprecated_since="7.0.0",
      replaced_by="`CLUSTER SHARDS`",
      history=(("4.0.0", "Added node IDs."),
               ("7.0.0", "Added additional networking metadata field.")))
def cluster_slots(c, argv):
    state = cluster_of(c)
    reply = []
    for start, end, node in _slot_runs(state):
        entry = [start, end, _endpoint_reply(c, node)]
        entry += [_endpoint_reply(c, r) for r in node.replicas
                  if _replica_available(state, r)]
        reply.append(entry)
    return reply


def _preferred_endpoint(c, node) -> bytes:
    kind = c.server.settings.cluster_preferred_endpoint_type
    if kind == "ip":
        return node.ip.encode()
    if kind == "hostname":
        return (node.hostname or "?").encode()
    return b""


def _shard_node(c, state, node) -> Map:
    tls = c.server.settings.tls_cluster
    plain_port = node.pport if tls else node.port
    pairs = [(b"id", node.name.encode())]
    if plain_port:
        pairs.append((b"port", plain_port))
    if tls and node.port:
        pairs.append((b"tls-port", node.port))
    pairs.append((b"ip", node.ip.encode()))
    pairs.append((b"endpoint", _preferred_endpoint(c, node)))
    if node.hostname:
        pairs.append((b"hostname", node.hostname.encode()))
    offset = state.host.repl_offset() if node.is_myself else node.repl_offset
    if node.failed:
        health = b"fail"
    elif node.is_replica and offset == 0:
        health = b"loading"
    else:
        health = b"online"
    pairs += [(b"role", b"replica" if node.is_replica else b"master"),
              (b"replication-offset", offset), (b"health", health)]
    return Map(pairs)


@_sub("shards", 2, since="7.0.0", tips=_NONDET,
      summary="Get array of cluster slots to node mappings",
      complexity="O(N) where N is the total number of cluster nodes")
def cluster_shards(c, argv):
    state = cluster_of(c)
    reply = []
    for node in state.nodes.values():
        if not node.is_master:
            continue
        bounds = []
        for start, end in node.slot_ranges:
            bounds += [start, end]
        members = [_shard_node(c, state, n)
                   for n in state.nodes_serving_slots_of(node)]
        reply.append(Map([(b"slots", bounds), (b"nodes", members)]))
    return reply


@_sub("links", 2, since="7.0.0", tips=_NONDET,
      summary="Returns a list of all TCP links to and from peer nodes in cluster",
      complexity="O(N) where N is the total number of Cluster nodes")
def cluster_links(c, argv):
    state = cluster_of(c)
    reply = []
    for link in state.links():
        events = ("r" + ("w" if link.pending else "")) if link.connected else ""
        reply.append(Map([
            (b"direction", b"from" if link.inbound else b"to"),
            (b"node", link.node.name.encode()),
            (b"create-time", link.ctime),
            (b"events", events.encode()),
            (b"send-buffer-allocated", link_send_buffer(link)),
            (b"send-buffer-used", link_send_buffer(link)),
        ]))
    return reply


@_sub("count-failure-reports", 3, "admin stale", tips=_NONDET,
      summary="Return the number of failure reports active for a given node",
      complexity="O(N) where N is the number of failure reports")
def cluster_count_failure_reports(c, argv):
    state = cluster_of(c)
    return state.failure_reports_count(_node_or_error(state, argv[2]))


# -- slots ----------------------------------------------------------------------

def _check_slots(state, wanted: dict, delete: bool, start: int, end: int):
    """Redis's checkSlotAssignmentsOrReply over start..end."""
    for slot in range(start, end + 1):
        if delete and state.slots[slot] is None:
            raise CommandError(f"ERR Slot {slot} is already unassigned")
        if not delete and state.slots[slot] is not None:
            raise CommandError(f"ERR Slot {slot} is already busy")
        if slot in wanted:
            raise CommandError(f"ERR Slot {slot} specified multiple times")
        wanted[slot] = None


def _update_slots(c, slots, delete: bool):
    engine_of(c).assign_slots(slots, delete)
    return OK


@_sub("addslots", -3, _ADMIN, summary="Assign new hash slots to receiving node",
      complexity="O(N) where N is the total number of hash slot arguments")
def cluster_addslots(c, argv):
    return _slots_command(c, argv, delete=False)


@_sub("delslots", -3, _ADMIN, summary="Set hash slots as unbound in receiving node",
      complexity="O(N) where N is the total number of hash slot arguments")
def cluster_delslots(c, argv):
    return _slots_command(c, argv, delete=True)


def _slots_command(c, argv, delete):
    state = cluster_of(c)
    slots = [_slot(arg) for arg in argv[2:]]
    wanted: dict = {}
    for slot in slots:
        _check_slots(state, wanted, delete, slot, slot)
    return _update_slots(c, wanted, delete)


@_sub("addslotsrange", -4, _ADMIN, since="7.0.0",
      summary="Assign new hash slots to receiving node",
      complexity="O(N) where N is the total number of the slots between the start slot and end slot arguments.")
def cluster_addslotsrange(c, argv):
    return _slots_range_command(c, argv, delete=False)


@_sub("delslotsrange", -4, _ADMIN, since="7.0.0",
      summary="Set hash slots as unbound in receiving node",
      complexity="O(N) where N is the total number of the slots between the start slot and end slot arguments.")
def cluster_delslotsrange(c, argv):
    return _slots_range_command(c, argv, delete=True)


def _slots_range_command(c, argv, delete):
    state = cluster_of(c)
    if len(argv) % 2:
        raise CommandError("ERR wrong number of arguments for 'cluster|%s' "
                           "command" % _text(argv[1]).lower())
    wanted: dict = {}
    for j in range(2, len(argv), 2):
        start, end = _slot(argv[j]), _slot(argv[j + 1])
        if start > end:
            raise CommandError(f"ERR start slot number {start} is greater "
                               f"than end slot number {end}")
        _check_slots(state, wanted, delete, start, end)
    return _update_slots(c, wanted, delete)


@_sub("flushslots", 2, _ADMIN, summary="Delete a node's own slots information")
def cluster_flushslots(c, argv):
    state = cluster_of(c)
    if state.host.db_size():
        raise CommandError("ERR DB must be empty to perform CLUSTER FLUSHSLOTS.")
    state.del_node_slots(state.myself)
    return _done(c)


@_sub("setslot", -4, _ADMIN, summary="Bind a hash slot to a specific node")
def cluster_setslot(c, argv):
    state = cluster_of(c)
    me = state.myself
    if me.is_replica:
        if c.kind == "master":
            return _replica_setslot(c, state, argv)
        raise CommandError("ERR Please use SETSLOT only with masters.")
    reply = _master_setslot(c, state, me, argv)
    _to_replicas(c, argv)
    return reply


def _to_replicas(c, argv):
    """Replicas learn SETSLOT from their master's stream (as Valkey 8):
    a failover in the middle of a migration keeps its state.  Only the
    replicas get it (Valkey's PROPAGATE_REPL), not the AOF; and only when
    every replica announced it takes it (a redis-server replica learns
    slots by gossip only, as in Redis 7.0)."""
    repl = replication(c.server)
    master = repl.master if repl is not None else None
    if master is None or master.backlog is None or not master.replicas or \
            not all(SETSLOT_CAPA in r.capa for r in master.replicas):
        return
    master.feed(encode_command([b"CLUSTER", *argv[1:]]))


def _replica_setslot(c, state, argv):
    """SETSLOT from our master's stream: record what it recorded."""
    slot = _slot(argv[2])
    action = argv[3].lower()
    engine = engine_of(c)
    node = None
    if len(argv) == 5:
        node = state.lookup(argv[4])
        if node is None:
            return OK
    if action == b"migrating" and node is not None:
        engine.set_slot_migrating(slot, node)
    elif action == b"importing" and node is not None:
        engine.set_slot_importing(slot, node)
    elif action == b"stable":
        engine.set_slot_stable(slot)
    elif action == b"node" and node is not None:
        state.importing.pop(slot, None)
        state.migrating.pop(slot, None)
        if state.slots[slot] is not node:
            state.del_slot(slot)
            state.add_slot(node, slot)
        engine.done()
    return OK


def _master_setslot(c, state, me, argv):
    slot = _slot(argv[2])
    action = argv[3].lower()
    engine = engine_of(c)
    if action == b"migrating" and len(argv) == 5:
        if state.slots[slot] is not me:
            raise CommandError(f"ERR I'm not the owner of hash slot {slot}")
        engine.set_slot_migrating(slot, _master_arg(state, argv[4]))
    elif action == b"importing" and len(argv) == 5:
        if state.slots[slot] is me:
            raise CommandError(f"ERR I'm already the owner of hash slot {slot}")
        engine.set_slot_importing(slot, _master_arg(state, argv[4]))
    elif action == b"stable" and len(argv) == 4:
        engine.set_slot_stable(slot)
    elif action == b"node" and len(argv) == 5:
        node = _master_arg(state, argv[4], "ERR Unknown node %s")
        if state.slots[slot] is me and node is not me and \
                state.host.count_keys_in_slot(slot):
            raise CommandError(f"ERR Can't assign hashslot {slot} to a "
                               "different node while I still hold keys for "
                               "this hash slot.")
        engine.set_slot_node(slot, node)
    else:
        raise CommandError("ERR Invalid CLUSTER SETSLOT action or number of "
                           "arguments. Try CLUSTER HELP")
    return OK


def _master_arg(state, arg, unknown="ERR I don't know about node %s"):
    node = _node_or_error(state, arg, unknown)
    if node.is_replica:
        raise CommandError("ERR Target node is not a master")
    return node


# -- epochs ---------------------------------------------------------------------

@_sub("bumpepoch", 2, _ADMIN, tips=_NONDET, summary="Advance the cluster config epoch")
def cluster_bumpepoch(c, argv):
    state = cluster_of(c)
    bumped = engine_of(c).bump_epoch()
    return Status("%s %d" % ("BUMPED" if bumped else "STILL",
                             state.myself.config_epoch))


@_sub("set-config-epoch", 3, _ADMIN, summary="Set the configuration epoch in a new node")
def cluster_set_config_epoch(c, argv):
    state = cluster_of(c)
    epoch = parse_int(argv[2])
    if epoch < 0:
        raise CommandError(f"ERR Invalid config epoch specified: {epoch}")
    if len(state.nodes) > 1:
        raise CommandError("ERR The user can assign a config epoch only when "
                           "the node does not know any other node.")
    if state.myself.config_epoch != 0:
        raise CommandError("ERR Node config epoch is already non-zero")
    state.myself.config_epoch = epoch
    state.current_epoch = max(state.current_epoch, epoch)
    return _done(c)


@_sub("saveconfig", 2, _ADMIN, summary="Forces the node to save cluster state on disk")
def cluster_saveconfig(c, argv):
    engine = engine_of(c)
    try:
        engine.save_config()
    except OSError as err:
        raise CommandError("ERR error saving the cluster node config: %s"
                           % (err.strerror or os.strerror(err.errno or 0)))
    return OK


# -- keys -------------------------------------------------------------------------

@_sub("keyslot", 3, summary="Returns the hash slot of the specified key",
      complexity="O(N) where N is the number of bytes in the key")
def cluster_keyslot(c, argv):
    cluster_of(c)
    return keyslot(argv[2])


@_sub("countkeysinslot", 3,
      summary="Return the number of local keys in the specified hash slot")
def cluster_countkeysinslot(c, argv):
    cluster_of(c)
    slot = parse_int(argv[2], NOT_INT)
    if not 0 <= slot < SLOTS:
        raise CommandError("ERR Invalid slot")
    return c.server.keyspace.count_in_slot(slot)


@_sub("getkeysinslot", 4, tips=_NONDET,
      summary="Return local key names in the specified hash slot",
      complexity="O(log(N)) where N is the number of requested keys")
def cluster_getkeysinslot(c, argv):
    cluster_of(c)
    slot = parse_int(argv[2], NOT_INT)
    count = parse_int(argv[3], NOT_INT)
    if not 0 <= slot < SLOTS or count < 0:
        raise CommandError("ERR Invalid slot or number of keys")
    return c.server.keyspace.keys_in_slot(slot, count)


# -- replicas and failover (replication plugs in through state.host) ----------

@_sub("replicate", 3, _ADMIN,
      summary="Reconfigure a node as a replica of the specified master node")
def cluster_replicate(c, argv):
    state = cluster_of(c)
    node = _node_or_error(state, argv[2])
    me = state.myself
    if node is me:
        raise CommandError("ERR Can't replicate myself")
    if node.is_replica:
        raise CommandError("ERR I can only replicate a master, not a replica.")
    if me.is_master and (me.numslots or state.host.db_size()):
        raise CommandError("ERR To set a master the node must be empty and "
                           "without assigned slots.")
    if not state.host.replication_available:
        raise CommandError("ERR CLUSTER REPLICATE needs the replication "
                           "service, which this node runs without")
    engine_of(c).replicate(node)
    return OK


@_sub("failover", -2, _ADMIN,
      summary="Forces a replica to perform a manual failover of its master.")
def cluster_failover(c, argv):
    state = cluster_of(c)
    if len(argv) > 3:
        raise _syntax_error(argv)
    force = takeover = False
    if len(argv) == 3:
        option = argv[2].lower()
        if option == b"force":
            force = True
        elif option == b"takeover":
            force = takeover = True
        else:
            raise CommandError(SYNTAX)
    me = state.myself
    if me.is_master:
        raise CommandError("ERR You should send CLUSTER FAILOVER to a replica")
    if me.replicaof is None:
        raise CommandError("ERR I'm a replica but my master is unknown to me")
    if not force and (me.replicaof.failed or me.replicaof.link is None):
        raise CommandError("ERR Master is down or failed, please use CLUSTER "
                           "FAILOVER FORCE")
    engine_of(c).manual_failover(force, takeover)
    return OK


# -- connection flags -------------------------------------------------------------

def _check_enabled(c):
    if not c.server.settings.cluster_enabled:
        raise CommandError(DISABLED)


@command("asking", 1, "fast", group="cluster", since="3.0.0",
         summary="Sent by cluster clients after an -ASK redirect",
         acl="connection", complexity="O(1)")
def asking(c, argv):
    _check_enabled(c)
    c.asking = True
    return OK


@command("readonly", 1, "fast loading stale", group="cluster", since="3.0.0",
         summary="Enables read queries for a connection to a cluster replica node",
         acl="connection", complexity="O(1)")
def readonly(c, argv):
    _check_enabled(c)
    c.readonly = True
    return OK


@command("readwrite", 1, "fast loading stale", group="cluster", since="3.0.0",
         summary="Disables read queries for a connection to a cluster replica node",
         acl="connection", complexity="O(1)")
def readwrite(c, argv):
    _check_enabled(c)
    c.readonly = False
    return OK


# -- test hooks ---------------------------------------------------------------------

@debug_subcommand("drop-cluster-packet-filter", 3, help=(
    "DROP-CLUSTER-PACKET-FILTER <packet-type>",
    "    Drop all packets that match the filtered type. Set to -1 allow all packets."))
def debug_drop_cluster_packet_filter(c, argv):
    """Incoming bus messages of that type are dropped (-1: none)."""
    packet_type = parse_int(argv[2])
    state = c.server.cluster
    if state is not None:
        state.drop_packet_filter = packet_type
    return OK

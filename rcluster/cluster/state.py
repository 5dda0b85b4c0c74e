"""The cluster as this node sees it (Redis's ``clusterState``), sans-IO.

``ClusterState`` is the data model: the nodes, the slot table, the epochs,
the FORGET blacklist, the election and manual-failover variables and the
bus statistics, with the primitive changes (add/delete/rename a node,
bind/unbind a slot, bump the config epoch, evaluate cluster_state).  It
imports nothing above it.  The protocol logic lives next to it, as
functions taking the state: gossip.py (PING/PONG/MEET), receive.py (what
a packet does), failure.py (PFAIL/FAIL), failover.py (elections, votes,
manual failover, replica migration) and slotconfig.py (slot ownership by
configEpoch, UPDATE).  Events enter through engine.py (link data, the
100 ms cron, before_sleep, saving nodes.conf), which sits above them all.

Nothing here does I/O or reads a clock: time comes from the ``now``
callable (unix ms), randomness from ``rng``, and everything the rest of
the node must do (count or delete keys, deliver a PUBLISH, replicate a
master) goes through ``host`` (see :class:`Host`).

Changes that must be persisted or that may change cluster_state set
``todo`` bits; the engine's ``before_sleep()`` acts on them, as Redis's
clusterBeforeSleep does.
"""
from __future__ import annotations

import ipaddress
import random


from rcluster.cluster import messages as m
from rcluster.cluster.link import Link  # noqa: F401 (type of node.link)
from rcluster.cluster.messages import (
    NODE_FAIL, NODE_HANDSHAKE, NODE_MASTER, NODE_MEET, NODE_MIGRATE_TO,
    NODE_MYSELF, NODE_NOFAILOVER, NODE_PFAIL, NODE_SLAVE, SLOTS, STATE_FAIL,
    STATE_OK, Header, Message)
from rcluster.cluster.node import ClusterNode, valid_name
from rcluster.logs import logger

log = logger("rcluster.cluster")

PORT_INCR = 10000             # cluster bus port = client port + 10000
FAIL_REPORT_VALIDITY_MULT = 2  # failure reports live 2 x node timeout
FAIL_UNDO_TIME_MULT = 2        # a FAIL master with slots is cleared after
BLACKLIST_TTL = 60             # seconds a FORGET'ed node can't come back
MAX_REJOIN_DELAY = 5000
MIN_REJOIN_DELAY = 500
WRITABLE_DELAY = 2000

# before_sleep() work (Redis's CLUSTER_TODO_*).  TODO_SAVE_CONFIG writes
# nodes.conf and fsyncs it: where Redis asks for SAVE_CONFIG|FSYNC_CONFIG
# (epochs, slots, votes, our own role) and for CLUSTER commands.
# TODO_SAVE_LAZY writes it without the fsync, where Redis saves without
# FSYNC_CONFIG: handshakes, addresses, other nodes' roles and PFAIL/FAIL
# flags (an fsync blocks the reactor for up to milliseconds on a busy disk,
# and a failure makes such changes on every node at once).
TODO_HANDLE_FAILOVER = 1 << 0
TODO_UPDATE_STATE = 1 << 1
TODO_SAVE_CONFIG = 1 << 2
TODO_HANDLE_MANUALFAILOVER = 1 << 4
TODO_NODE_FAILED = 1 << 5     # a node was flagged FAIL (failover.py)
TODO_SAVE_LAZY = 1 << 6
TODO_SAVE_ALL = TODO_SAVE_CONFIG | TODO_UPDATE_STATE


def bus_port(settings, port: int | None = None) -> int:
    """The cluster bus port: cluster-port, or the client port + 10000.
    With ``port``, the bus port a peer at that client port has by
    default (CLUSTER MEET without a bus port)."""
    if port is not None:
        return port + PORT_INCR
    client = settings.tls_port if settings.tls_cluster else settings.port
    return settings.cluster_port or client + PORT_INCR


class Host:
    """The rest of the node, as the cluster sees it.  These defaults are a
    node without data or replication; the service installs the real one."""

    # Whether CLUSTER REPLICATE can turn this node into a replica.
    replication_available = False

    def count_keys_in_slot(self, slot: int) -> int:
        return 0

    def delete_keys_in_slot(self, slot: int) -> int:
        return 0

    def db_size(self) -> int:
        return 0

    def empty_data(self):
        """A replica turned master by CLUSTER RESET drops its data set."""

    def deliver(self, channel: bytes, message: bytes, shard: bool):
        """A PUBLISH / PUBLISHSHARD received from the bus."""

    def remove_channels_in_slot(self, slot: int):
        """Our shard lost a slot: its shard channels are unsubscribed."""

    def repl_offset(self) -> int:
        """Our replication offset (a replica: how far it processed)."""
        return 0

    def repl_data_age(self) -> int:
        """A replica: ms since it last heard from its master (or since the
        link went down); the failover data-age check uses it."""
        return 0

    def replicate(self, node):
        """Replicate ``node`` (a ClusterNode), or stop replicating (None)."""

    def pause_writes(self, until_ms: int):
        """Manual failover, master side: hold writers until then."""

    def unpause_writes(self):
        """The manual failover ended: writers go on."""


class ClusterState:
    def __init__(self, settings, now, host: Host | None = None,
                 rng: random.Random | None = None):
        self.settings = settings
        self.now = now                      # () -> unix time in ms
        self.host = host if host is not None else Host()
        self.random = rng if rng is not None else random.Random()
        self.nodes: dict = {}               # name -> ClusterNode
        self.myself: ClusterNode | None = None
        self.current_epoch = 0
        self.last_vote_epoch = 0
        self.state = STATE_FAIL
        self.size = 1
        self.slots: list = [None] * SLOTS   # slot -> owning ClusterNode
        self.slots_assigned = 0             # slots bound to a node
        self.migrating: dict = {}           # slot -> node (SETSLOT MIGRATING)
        self.importing: dict = {}           # slot -> node (SETSLOT IMPORTING)
        # Slots with keys a MIGRATE has in flight (slot -> count): their
        # writes may have to wait (see cluster/migration.py).
        self.busy_slots: dict = {}
        # Slots whose owner stopped claiming them (kept bound, see
        # slotconfig.update_slots_config_with).
        self.not_claimed: set = set()
        self.blacklist: dict = {}           # name -> unix seconds it expires
        self.todo = 0
        self.iteration = 0                  # cron calls so far
        self.pings_sent = 0                 # gossip de-duplication counter
        self.stats_sent = [0] * m.TYPE_COUNT
        self.stats_received = [0] * m.TYPE_COUNT
        self.stats_pfail_nodes = 0
        self.links_buffer_limit_exceeded = 0
        # Elections (failover.py; Redis's failover_auth_* fields).
        self.failover_auth_time = 0         # when our election may start
        self.failover_auth_count = 0        # votes received
        self.failover_auth_sent = False     # requests sent this election
        self.failover_auth_rank = 0
        self.failover_auth_epoch = 0
        self.cant_failover_reason = 0
        self.cant_failover_logged = 0       # when that reason was logged
        # Manual failover (both sides; mf_end 0 = none in progress).
        self.mf_end = 0                     # deadline (ms)
        self.mf_can_start = False           # replica: may start the election
        self.mf_replica = None              # master: the replica asking
        self.mf_master_offset = -1          # replica: master's paused offset
        self.drop_packet_filter = -1        # DEBUG DROP-CLUSTER-PACKET-FILTER
        # The steady-state fast paths (tests/protocol/test_bus_fastpaths.py
        # runs them against the full paths): our header kept encoded
        # (messages.FrameEncoder) and, in receive.py, a sender's slot claim
        # not compared again while it and our view of its shard are the
        # same as last time.
        self.fast_paths = True
        self.encoder = m.FrameEncoder()
        # Nodes the engine's cron must look at soon whatever their
        # deadlines (added, or a link of theirs freed): engine._due_nodes.
        self.cron_wakeups: list = []
        self._first_update_time = 0
        self._among_minority_time = 0
        self._announced_ip = None

    # -- the names the routing code uses --------------------------------
    @property
    def is_ok(self) -> bool:
        return self.state == STATE_OK

    def slot_owner(self, slot: int):
        return self.slots[slot]

    def migrating_to(self, slot: int):
        return self.migrating.get(slot)

    def importing_from(self, slot: int):
        return self.importing.get(slot)

    def serves_directly(self, slot: int) -> bool:
        """The routing fast path: the cluster is ok and the slot is ours,
        not migrating (checked for nearly every request: keep it lean)."""
        return self.slots[slot] is self.myself and self.state == STATE_OK \
            and slot not in self.migrating and slot not in self.busy_slots

    @property
    def node_timeout(self) -> int:
        return self.settings.cluster_node_timeout

    # -- start-up ---------------------------------------------------------
    def create_myself(self):
        """A fresh node: a master with a random name."""
        self.myself = self.create_node(None, NODE_MYSELF | NODE_MASTER)
        self.add_node(self.myself)
        log.info("No cluster configuration found, I'm {name}",
                 name=self.myself.name)
        self.refresh_myself()

    def refresh_myself(self):
        """Keep myself in step with the settings that CONFIG SET can change
        (announced address, ports, hostname, nofailover)."""
        me, s = self.myself, self.settings
        me.port, me.pport, me.cport = self.announced_ports()
        announced = s.cluster_announce_ip or None
        if announced != self._announced_ip:
            self._announced_ip = announced
            me.ip = announced[:m.IP_LEN - 1] if announced else ""
        me.hostname = s.cluster_announce_hostname or ""
        old = me.flags
        me.flags &= ~NODE_NOFAILOVER
        if s.cluster_replica_no_failover:
            me.flags |= NODE_NOFAILOVER
        if me.flags != old:
            self.todo |= TODO_SAVE_CONFIG | TODO_UPDATE_STATE

    def announced_ports(self):
        """(port, pport, cport) as Redis's deriveAnnouncedPorts."""
        s = self.settings
        port = s.tls_port if s.tls_cluster else s.port
        pport = s.port if s.tls_cluster else 0
        cport = bus_port(s)
        if s.tls_cluster and s.cluster_announce_tls_port:
            port, pport = s.cluster_announce_tls_port, s.cluster_announce_port
        elif s.cluster_announce_port:
            port = s.cluster_announce_port
        if s.cluster_announce_bus_port:
            cport = s.cluster_announce_bus_port
        return port, pport, cport

    # -- nodes --------------------------------------------------------------
    def random_name(self) -> str:
        return "%040x" % self.random.getrandbits(160)

    def create_node(self, name, flags=0) -> ClusterNode:
        return ClusterNode(name or self.random_name(), flags, self.now())

    def add_node(self, node: ClusterNode):
        assert node.name not in self.nodes, node.name
        self.nodes[node.name] = node
        self.cron_wakeups.append(node)

    def lookup(self, name):
        """The node of that name (str or bytes), or None."""
        if isinstance(name, (bytes, bytearray)):
            name = bytes(name).decode("latin-1")
        node = self.nodes.get(name)
        # Every name in the table was checked when its node was made, so
        # a hit needs no check (a packet names known nodes all the time).
        if node is not None or not valid_name(name):
            return node
        return None

    def rename_node(self, node: ClusterNode, new_name: str):
        log.debug("Renaming node {old} into {new}", old=node.name, new=new_name)
        del self.nodes[node.name]
        node.name = new_name
        self.add_node(node)

    def del_node(self, node: ClusterNode):
        """Forget a node: unbind its slots, drop the failure reports it
        sent, unlink it from its master and replicas, close its links."""
        for table in (self.importing, self.migrating):
            for slot in [s for s, n in table.items() if n is node]:
                del table[slot]
        for slot in node.slots:
            if self.slots[slot] is node:
                self.del_slot(slot)
        max_age, now = self.report_validity, self.now()
        for other in self.nodes.values():
            if other is not node:
                other.del_failure_report(node, max_age, now)
        for replica in node.replicas:
            replica.replicaof = None
        if node.is_replica and node.replicaof is not None:
            node.replicaof.remove_replica(node)
        del self.nodes[node.name]
        for link in (node.link, node.inbound_link):
            if link is not None:
                self.free_link(link)

    def set_node_as_master(self, node: ClusterNode):
        """A node we thought a replica acts as a master now."""
        if node.is_master:
            return
        if node.replicaof is not None:
            node.replicaof.remove_replica(node)
            if node is not self.myself:
                node.flags |= NODE_MIGRATE_TO
        node.flags = (node.flags & ~NODE_SLAVE) | NODE_MASTER
        node.replicaof = None
        # Another node's role: saved without fsync, as Redis does.
        self.todo |= TODO_UPDATE_STATE | (
            TODO_SAVE_CONFIG if node is self.myself else TODO_SAVE_LAZY)

    def set_master(self, master: ClusterNode):
        """Make myself a replica of ``master`` (Redis's clusterSetMaster)."""
        me = self.myself
        assert master is not me and me.numslots == 0
        if me.is_master:
            me.flags = (me.flags & ~(NODE_MASTER | NODE_MIGRATE_TO)) | NODE_SLAVE
            self.close_all_slots()
        elif me.replicaof is not None:
            me.replicaof.remove_replica(me)
        me.replicaof = master
        master.add_replica(me)
        self.host.replicate(master)
        self.reset_manual_failover()

    def reset_manual_failover(self):
        """Abort (or end) a manual failover, on either side (Redis's
        resetManualFailover): a master that paused its writers resumes."""
        if self.mf_replica is not None:
            self.host.unpause_writes()
        self.mf_end = 0
        self.mf_can_start = False
        self.mf_replica = None
        self.mf_master_offset = -1

    def nodes_serving_slots_of(self, node: ClusterNode) -> list:
        """The master of node's shard, then its replicas."""
        master = node.master
        if master is None:
            return []
        return [master] + list(master.replicas)

    # -- slots --------------------------------------------------------------
    # add_slot(s) and del_slot are the only writers of the slot table and
    # of the nodes' slot bits, so a node's numslots is always its count of
    # slots in the table (CLUSTER INFO and update_state rely on it).
    def add_slot(self, node: ClusterNode, slot: int) -> bool:
        if self.slots[slot] is not None:
            return False
        if not node.set_slot(slot) and node.numslots == 1:
            self._first_slot(node)
        self.slots[slot] = node
        self.slots_assigned += 1
        return True

    def _first_slot(self, node: ClusterNode):
        """A master's first slot makes it a replica-migration target when
        the cluster has replicas at all (Redis issue #3043)."""
        if self._masters_have_replicas():
            node.flags |= NODE_MIGRATE_TO

    def add_slots(self, node: ClusterNode, slots) -> None:
        """add_slot for many slots that nobody owns (the caller checked):
        a joining node learns a whole shard's slots from one PONG."""
        if not slots:
            return
        table = self.slots
        first = node.numslots == 0
        node.set_slots(slots)
        for slot in slots:
            table[slot] = node
        self.slots_assigned += len(slots)
        if first:
            self._first_slot(node)

    def del_slot(self, slot: int) -> bool:
        node = self.slots[slot]
        if node is None:
            return False
        if self.myself.master is node:
            self.host.remove_channels_in_slot(slot)
        node.clear_slot(slot)
        self.slots[slot] = None
        self.slots_assigned -= 1
        return True

    def del_node_slots(self, node: ClusterNode) -> int:
        deleted = 0
        for slot in node.slots:
            self.del_slot(slot)
            deleted += 1
        return deleted

    def close_all_slots(self):
        self.migrating.clear()
        self.importing.clear()

    def is_slot_unclaimed(self, slot: int) -> bool:
        return self.slots[slot] is None or slot in self.not_claimed

    def _masters_have_replicas(self) -> bool:
        return any(n.replicas for n in self.nodes.values() if not n.is_replica)

    # -- epochs -------------------------------------------------------------
    def max_epoch(self) -> int:
        top = max((n.config_epoch for n in self.nodes.values()), default=0)
        return max(top, self.current_epoch)

    def bump_epoch_without_consensus(self, above: int = 0) -> bool:
        """Take a new config epoch unless ours is already the greatest
        (and greater than ``above``: an epoch known elsewhere, which
        gossip may not have brought here yet)."""
        me = self.myself
        if above > self.current_epoch:
            self.current_epoch = above
        if me.config_epoch == 0 or me.config_epoch != self.max_epoch() or \
                me.config_epoch <= above:
            self.current_epoch += 1
            me.config_epoch = self.current_epoch
            self.todo |= TODO_SAVE_CONFIG
            log.warn("New configEpoch set to {epoch}", epoch=me.config_epoch)
            return True
        return False

    def handle_config_epoch_collision(self, sender: ClusterNode):
        """Two masters with one config epoch: the one with the smaller name
        moves on, so all masters end with distinct epochs."""
        me = self.myself
        if sender.config_epoch != me.config_epoch or not sender.is_master \
                or not me.is_master:
            return
        if sender.name <= me.name:
            return
        self.current_epoch += 1
        me.config_epoch = self.current_epoch
        self.todo |= TODO_SAVE_CONFIG
        log.info("WARNING: configEpoch collision with node {name}. "
                 "configEpoch set to {epoch}", name=sender.name,
                 epoch=me.config_epoch, redis_level="verbose")

    # -- FORGET blacklist ---------------------------------------------------
    def _blacklist_cleanup(self):
        now = self.now() // 1000
        for name in [n for n, t in self.blacklist.items() if t < now]:
            del self.blacklist[name]

    def blacklist_add(self, node: ClusterNode):
        self._blacklist_cleanup()
        self.blacklist[node.name] = self.now() // 1000 + BLACKLIST_TTL

    def blacklisted(self, name: str) -> bool:
        self._blacklist_cleanup()
        return name in self.blacklist

    # -- failure reports ----------------------------------------------------
    @property
    def report_validity(self) -> int:
        return self.node_timeout * FAIL_REPORT_VALIDITY_MULT

    def failure_reports_count(self, node: ClusterNode) -> int:
        return node.failure_reports_count(self.report_validity, self.now())

    # -- handshake ----------------------------------------------------------
    def start_handshake(self, ip: str, port: int, cport: int) -> bool:
        """CLUSTER MEET: add a handshake node for the address.  Returns
        False if a handshake with it is already going on; raises
        ValueError for an invalid address."""
        try:
            norm_ip = str(ipaddress.ip_address(ip))
        except ValueError:
            raise ValueError(f"invalid address {ip!r}") from None
        if not (0 < port <= 65535 and 0 < cport <= 65535):
            raise ValueError("invalid port")
        for node in self.nodes.values():
            if node.in_handshake and node.ip.lower() == norm_ip.lower() and \
                    node.port == port and node.cport == cport:
                return False
        node = self.create_node(None, NODE_HANDSHAKE | NODE_MEET)
        node.ip, node.port, node.cport = norm_ip, port, cport
        self.add_node(node)
        return True

    # -- cluster_state --------------------------------------------------
    def update_state(self):
        """Evaluate cluster_state: ok needs every slot served by a non-FAIL
        node (with cluster-require-full-coverage) and a reachable majority
        of the masters that serve slots."""
        self.todo &= ~TODO_UPDATE_STATE
        now = self.now()
        me = self.myself
        if self._first_update_time == 0:
            self._first_update_time = now
        # A master that just started waits before accepting writes, to
        # give the cluster a chance to reconfigure it.
        if me.is_master and self.state == STATE_FAIL and \
                now - self._first_update_time < WRITABLE_DELAY:
            return
        new_state = STATE_OK
        if self.settings.cluster_require_full_coverage and \
                not self._all_slots_served():
            new_state = STATE_FAIL
        size = reachable = 0
        for node in self.nodes.values():
            if node.is_master and node.numslots:
                size += 1
                if not node.flags & (NODE_FAIL | NODE_PFAIL):
                    reachable += 1
        self.size = size
        if reachable < size // 2 + 1:
            new_state = STATE_FAIL
            self._among_minority_time = now
        if new_state != self.state:
            rejoin_delay = min(max(self.node_timeout, MIN_REJOIN_DELAY),
                               MAX_REJOIN_DELAY)
            # A master back from a minority partition waits for a
            # configuration update before serving queries again.
            if new_state == STATE_OK and me.is_master and \
                    now - self._among_minority_time < rejoin_delay:
                return
            log.warn("Cluster state changed: {state}",
                     state="ok" if new_state == STATE_OK else "fail")
            self.state = new_state

    def _all_slots_served(self) -> bool:
        """Every slot bound to a node not flagged FAIL.  Run by the cron
        ten times a second while the state is fail: no Python loop over
        the 16384 slots (a node in the table always has numslots > 0)."""
        if self.slots_assigned < SLOTS:
            return False
        return not any(node.flags & NODE_FAIL and node.numslots
                       for node in self.nodes.values())

    # -- reset ------------------------------------------------------------
    def reset(self, hard: bool):
        """CLUSTER RESET: forget every other node and all slots; a hard
        reset also takes a new name and zeroes the epochs."""
        me = self.myself
        if me.is_replica:
            self.set_node_as_master(me)
            self.host.replicate(None)
            self.host.empty_data()
        self.close_all_slots()
        self.reset_manual_failover()
        for slot in range(SLOTS):
            self.del_slot(slot)
        for node in list(self.nodes.values()):
            if node is not me:
                self.del_node(node)
        if hard:
            self.current_epoch = self.last_vote_epoch = 0
            me.config_epoch = 0
            log.warn("configEpoch set to 0 via CLUSTER RESET HARD")
            self.rename_node(me, self.random_name())
            log.info("Node hard reset, now I'm {name}", name=me.name)
        self.todo |= TODO_SAVE_ALL

    # -- sending ----------------------------------------------------------
    def build_header(self, msg_type: int) -> Header:
        """Our header: a replica sends its master's slots and epoch."""
        me = self.myself
        master = me.replicaof if me.is_replica and me.replicaof else me
        port, pport, cport = self.announced_ports()
        return Header(
            type=msg_type, sender=me.name.encode(),
            current_epoch=self.current_epoch,
            config_epoch=master.config_epoch,
            offset=self.host.repl_offset(), myslots=master.bitmap,
            slaveof=me.replicaof.name.encode() if me.replicaof else None,
            myip=(self.settings.cluster_announce_ip or "")[:m.IP_LEN - 1],
            port=port, pport=pport, cport=cport, flags=me.flags,
            state=self.state,
            mflags=m.MSGFLAG_PAUSED if me.is_master and self.mf_end else 0)

    def encode(self, message: Message) -> bytes:
        if self.fast_paths:
            return self.encoder.encode(message)
        return m.encode(message)

    def send(self, link, message: Message):
        if link is None:
            return
        self.send_frame(link, self.encode(message), message.header.type)

    def send_frame(self, link, frame: bytes, msg_type: int):
        link.send(frame)
        if msg_type < m.TYPE_COUNT:
            self.stats_sent[msg_type] += 1

    def broadcast(self, message: Message):
        """To every node we have a link to, but myself and handshakes."""
        frame = self.encode(message)
        for node in list(self.nodes.values()):
            if node.flags & (NODE_MYSELF | NODE_HANDSHAKE) or node.link is None:
                continue
            self.send_frame(node.link, frame, message.header.type)

    def propagate_publish(self, channel: bytes, message: bytes, shard: bool):
        """PUBLISH goes to every node; SPUBLISH to the nodes of our shard."""
        msg_type = m.PUBLISHSHARD if shard else m.PUBLISH
        msg = Message(self.build_header(msg_type), m.PublishBody(channel, message))
        if not shard:
            self.broadcast(msg)
            return
        frame = self.encode(msg)
        for node in self.nodes_serving_slots_of(self.myself):
            if node.flags & (NODE_MYSELF | NODE_HANDSHAKE) or node.link is None:
                continue
            self.send_frame(node.link, frame, msg_type)

    # -- links (bookkeeping; the engine opens and feeds them) -----------
    def free_link(self, link: Link):
        node = link.node
        if node is not None:
            self.cron_wakeups.append(node)
            if node.link is link:
                node.link = None
            elif node.inbound_link is link:
                node.inbound_link = None
        link.close()

    def set_inbound_link(self, node: ClusterNode, link: Link):
        """Attach an inbound link to the node that sent on it; a node has
        at most one, so an older one is closed."""
        if node.inbound_link is not None and node.inbound_link is not link:
            self.free_link(node.inbound_link)
        node.inbound_link = link
        link.node = node

    def links(self) -> list:
        out = []
        for node in self.nodes.values():
            if node.link is not None:
                out.append(node.link)
            if node.inbound_link is not None:
                out.append(node.inbound_link)
        return out

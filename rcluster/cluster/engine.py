"""Where events enter the cluster layer (sans-IO): links, the cron, before_sleep.

``ClusterEngine`` sits above the model (state.py) and the protocol modules
(receive, gossip, failure, failover, slotconfig): it is the only thing the
I/O side (bus.py, service.py) and the CLUSTER commands call.

- Links: ``connect`` asks the bus (``connector``) to open an outbound link,
  ``accept_link`` makes one for a peer that connected to us,
  ``link_connected`` / ``link_data`` / ``link_lost`` are the connection
  events.
- ``cron()`` every 100 ms (Redis's clusterCron): handshake timeouts,
  reconnections, pings, PFAIL detection, the replica's failover, manual
  failover and replica-migration duties.
- ``before_sleep()`` after each event (Redis's clusterBeforeSleep): acts on
  the state's ``todo`` bits - the election when a FAIL or a vote arrived,
  cluster_state, nodes.conf (written, and fsync'd where Redis does,
  before any reply goes out: the caller runs it before returning).
- Operations of the CLUSTER commands whose effects belong to the cluster
  layer: SETSLOT (epoch bump and broadcast), ADDSLOTS/DELSLOTS, REPLICATE,
  FAILOVER.

Time is the state's ``now``; nothing here touches the reactor.
"""
from __future__ import annotations

import heapq
import itertools

from rcluster.cluster import failover, messages as m, nodesconf
from rcluster.cluster.gossip import broadcast_pong, send_ping
from rcluster.cluster.link import Link
from rcluster.cluster.messages import (NODE_FAIL, NODE_HANDSHAKE, NODE_MEET,
                                       NODE_MYSELF, NODE_NOADDR, NODE_PFAIL,
                                       STATE_FAIL, BusProtocolError)
from rcluster.cluster.receive import process_packet
from rcluster.cluster.state import (TODO_HANDLE_FAILOVER,
                                    TODO_HANDLE_MANUALFAILOVER,
                                    TODO_NODE_FAILED, TODO_SAVE_CONFIG,
                                    TODO_SAVE_LAZY, TODO_UPDATE_STATE)
from rcluster.logs import logger
from rcluster.memory import free_links_over_limit

log = logger("rcluster.cluster")

# Reconnection to a node whose connection attempts fail (ms).
RECONNECT_MIN_DELAY = 100
RECONNECT_MAX_DELAY = 1000

class ClusterEngine:
    def __init__(self, state, connector=None, config_file=None, fatal=None):
        self.state = state
        self.connector = connector          # (Link) -> None: open it
        self.config_file = config_file      # nodesconf.ConfigFile
        self.fatal = fatal                  # (message) -> never returns
        # The cron's deadlines (fast path): (due ms, seq, node); an entry
        # is current while node.cron_seq == seq.
        self._heap: list = []
        self._seq = itertools.count(1)

    # -- links --------------------------------------------------------------
    def connect(self, node) -> Link:
        """Create the outbound link to a node; the bus connects it."""
        state = self.state
        link = Link(node, inbound=False, now=state.now())
        node.link = link
        if self.connector is not None:
            try:
                self.connector(link)
            except Exception as err:
                # Failure detection needs a pending ping: claim one now.
                if node.ping_sent == 0:
                    node.ping_sent = state.now()
                log.debug("Unable to connect to Cluster Node [{ip}]:{port} "
                          "-> {err}", ip=node.ip, port=node.cport, err=err)
                state.free_link(link)
                self._throttle_reconnect(node)
        return link

    def _throttle_reconnect(self, node):
        """A connection attempt failed: the next one waits, the delay
        doubling from one cron period up to a quarter of the node timeout
        (at most RECONNECT_MAX_DELAY), so a large cluster with dead nodes
        doesn't spin on them while a node back up is still reached well
        within the timeout."""
        cap = max(RECONNECT_MIN_DELAY,
                  min(RECONNECT_MAX_DELAY, self.state.node_timeout // 4))
        delay = min(max(node.reconnect_delay * 2, RECONNECT_MIN_DELAY), cap)
        node.reconnect_delay = delay
        # Half a cron period early: the cron that comes due then retries.
        node.next_connect = self.state.now() + delay - RECONNECT_MIN_DELAY // 2

    def accept_link(self) -> Link:
        """A peer connected to our bus port."""
        return Link(None, inbound=True, now=self.state.now())

    def link_connected(self, link: Link):
        """Our outbound connection is up: PING (or MEET) right away, so a
        live node is never seen as failing because of a reconnection."""
        node = link.node
        node.reconnect_delay = node.next_connect = 0
        old_ping_sent = node.ping_sent
        send_ping(self.state, link,
                  m.MEET if node.flags & NODE_MEET else m.PING)
        if old_ping_sent:
            node.ping_sent = old_ping_sent
        node.flags &= ~NODE_MEET
        self.before_sleep()

    def link_data(self, link: Link, data: bytes):
        """Bytes received on a link: process each complete packet."""
        state = self.state
        try:
            link.decoder.feed(data)
            for message in link.decoder:
                if message.header.type == state.drop_packet_filter:
                    log.warn("Dropping packet that matches debug drop filter")
                    continue
                process_packet(state, link, message)
                if link.closed:
                    break
        except BusProtocolError as err:
            node = link.node.name if link.node is not None else "?"
            log.warn("Bad cluster bus message from node {node} ({peer}): "
                     "{reason}; dropping the link", node=node,
                     peer=link.peer_ip, reason=err.reason)
            state.free_link(link)
        self.before_sleep()

    def link_lost(self, link: Link):
        """The connection closed or could not be made."""
        node = link.node
        self.state.free_link(link)
        if node is not None and not link.inbound and not link.was_attached \
                and node.link is None:
            self._throttle_reconnect(node)
        self.before_sleep()

    # -- deferred work --------------------------------------------------------
    def before_sleep(self, fsync: bool = True):
        """Act on the todo bits (``fsync=False``: a TODO_SAVE_CONFIG save
        is not fsync'd, see done)."""
        state = self.state
        if not state.todo:
            return              # after most events: nothing to do
        todo, state.todo = state.todo, 0
        if todo & TODO_NODE_FAILED and failover.ELECTION_ON_FAIL:
            todo |= TODO_HANDLE_FAILOVER
        # Redis runs the handlers again at its next loop iteration when
        # they ask for it; here: at once (an election that may start now
        # does), at most a few times.  A manual failover still catching
        # up waits for the next event (the master pings every 100 ms).
        for _ in range(3):
            if todo & TODO_HANDLE_MANUALFAILOVER:
                if state.myself.is_replica:
                    failover.handle_manual_failover(state)
                    failover.handle_replica_failover(state)
            elif todo & TODO_HANDLE_FAILOVER:
                failover.handle_replica_failover(state)
            else:
                break
            again, state.todo = state.todo, 0
            todo = (todo & ~(TODO_HANDLE_FAILOVER | TODO_HANDLE_MANUALFAILOVER)) \
                | (again & ~TODO_HANDLE_MANUALFAILOVER)
            state.todo |= again & TODO_HANDLE_MANUALFAILOVER
        else:
            state.todo |= todo & (TODO_HANDLE_FAILOVER |
                                  TODO_HANDLE_MANUALFAILOVER)
        if todo & TODO_UPDATE_STATE:
            state.update_state()
        if todo & TODO_SAVE_CONFIG:
            self.save_config_or_die(fsync)
        elif todo & TODO_SAVE_LAZY:
            # Written, not fsync'd: where Redis saves without FSYNC_CONFIG.
            self.save_config_or_die(fsync=False)

    def save_config(self, fsync: bool = True):
        """Write and fsync nodes.conf now (``fsync=False``: no fsync);
        raises OSError on failure."""
        state = self.state
        state.todo &= ~(TODO_SAVE_CONFIG | TODO_SAVE_LAZY)
        if self.config_file is not None:
            self.config_file.save(nodesconf.render(state), fsync=fsync)

    def save_config_or_die(self, fsync: bool = True):
        """A node that can't persist its configuration must not go on."""
        try:
            self.save_config(fsync)
        except OSError as err:
            if self.fatal is None:
                raise
            self.fatal(f"Fatal: can't update cluster config file: {err}")

    # -- the 100 ms timer -------------------------------------------------------
    def cron(self):
        state = self.state
        state.iteration += 1
        state.refresh_myself()
        # Only the nodes with due work, unless the fast paths are off.
        due = self._due_nodes() if state.fast_paths else None
        if due is None:
            state.cron_wakeups.clear()
        self._connect_links(due)
        if state.iteration % 10 == 0:
            self._ping_random_node()
        orphaned, max_replicas, my_replicas = failover.count_orphans(state)
        update_state = self._detect_failures(due)
        if due is not None:
            self._reschedule(due)
        me = state.myself
        # A replica (after a restart, say) whose replication is not running
        # starts it once its master's address is known.
        if me.is_replica and me.replicaof is not None and \
                me.replicaof.has_addr and me.replicaof.ip and \
                me.replicaof.port:
            state.host.replicate(me.replicaof)
        failover.manual_failover_check_timeout(state)
        if me.is_replica:
            failover.handle_manual_failover(state)
            failover.handle_replica_failover(state)
            if orphaned and max_replicas >= 2 and \
                    my_replicas == max_replicas and \
                    state.settings.cluster_allow_replica_migration:
                failover.handle_replica_migration(state, max_replicas)
        if update_state or state.state == STATE_FAIL:
            state.update_state()
        free_links_over_limit(state, state.settings.cluster_link_sendbuf_limit)
        self.before_sleep()

    def _due_nodes(self) -> list:
        """The nodes whose cron work may be due: deadlines reached, plus
        the nodes the state woke (added, or a link freed).  Every other
        node's next check is in the heap, at most half a node timeout
        away: any later change of its times (a ping sent, a link made)
        moves its thresholds to at least that far, so none is missed."""
        state = self.state
        now = state.now()
        due = dict.fromkeys(state.cron_wakeups)
        state.cron_wakeups.clear()
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, seq, node = heapq.heappop(heap)
            if node.cron_seq == seq:
                due[node] = None
        if state.mf_end and state.mf_replica is not None:
            due[state.mf_replica] = None        # pinged every cron
        nodes = state.nodes
        return [n for n in due if nodes.get(n.name) is n]

    def _reschedule(self, nodes):
        """Push the next deadline of each node just handled: the earliest
        time one of the cron's conditions can hold for it."""
        state = self.state
        now = state.now()
        timeout = state.node_timeout
        half = timeout // 2
        due_max = now + max(RECONNECT_MIN_DELAY, half)
        handshake_timeout = max(timeout, 1000)
        live = state.nodes
        heap = self._heap
        for node in nodes:
            flags = node.flags
            if live.get(node.name) is not node or flags & NODE_MYSELF:
                continue
            due = due_max
            link = node.link
            ping_sent = node.ping_sent
            if flags & NODE_HANDSHAKE:
                due = min(due, node.ctime + handshake_timeout + 1)
            if link is None:
                if not flags & NODE_NOADDR:
                    due = min(due, node.next_connect)
                    if ping_sent == 0 and not flags & NODE_HANDSHAKE:
                        due = min(due, node.pong_received + half + 1)
            elif ping_sent == 0:
                due = min(due, node.pong_received + half + 1)
            else:
                due = min(due, max(link.ctime + timeout, ping_sent + half,
                                   node.data_received + half) + 1)
            if ping_sent and not flags & (NODE_PFAIL | NODE_FAIL):
                due = min(due, max(ping_sent, node.data_received)
                          + timeout + 1)
            seq = next(self._seq)
            node.cron_seq = seq
            heapq.heappush(heap, (max(due, now + 1), seq, node))
        if len(heap) > 4 * len(live) + 64:
            # Stale entries (nodes rescheduled early, or deleted): rebuild.
            self._heap = [e for e in heap if e[2].cron_seq == e[1]
                          and live.get(e[2].name) is e[2]]
            heapq.heapify(self._heap)

    def _connect_links(self, nodes=None):
        """Handshake timeouts and reconnections (of ``nodes``, or all);
        counts PFAIL nodes too."""
        state = self.state
        now = state.now()
        handshake_timeout = max(state.node_timeout, 1000)
        state.stats_pfail_nodes = len([
            1 for node in state.nodes.values()
            if node.flags & (NODE_PFAIL | NODE_MYSELF | NODE_NOADDR)
            == NODE_PFAIL])
        for node in list(state.nodes.values()) if nodes is None else nodes:
            if node.flags & (NODE_MYSELF | NODE_NOADDR):
                continue
            if state.nodes.get(node.name) is not node:
                continue
            if node.in_handshake and now - node.ctime > handshake_timeout:
                state.del_node(node)
                continue
            if node.link is None and now >= node.next_connect:
                self.connect(node)

    def _ping_random_node(self):
        """Ping the node with the oldest pong among a few random ones."""
        state = self.state
        nodes = list(state.nodes.values())
        best = None
        for _ in range(5):
            node = state.random.choice(nodes)
            if node.link is None or node.ping_sent != 0 or \
                    node.flags & (NODE_MYSELF | NODE_HANDSHAKE):
                continue
            if best is None or node.pong_received < best.pong_received:
                best = node
        if best is not None:
            log.debug("Pinging node {name}", name=best.name)
            send_ping(state, best.link, m.PING)

    def _detect_failures(self, nodes=None) -> bool:
        """Reconnect quiet links, keep pings flowing, flag late nodes PFAIL
        (``nodes``, or all).  Returns whether cluster_state must be
        evaluated again."""
        state = self.state
        timeout = state.node_timeout
        me = state.myself
        update_state = False
        for node in list(state.nodes.values()) if nodes is None else nodes:
            if node.flags & (NODE_MYSELF | NODE_NOADDR | NODE_HANDSHAKE):
                continue
            if nodes is not None and state.nodes.get(node.name) is not node:
                continue
            now = state.now()
            ping_delay = now - node.ping_sent
            data_delay = now - node.data_received
            link = node.link
            # Waiting for a PONG for half the timeout with no traffic at
            # all: the connection may be the problem, so open a new one.
            if link is not None and now - link.ctime > timeout and \
                    node.ping_sent and ping_delay > timeout // 2 and \
                    data_delay > timeout // 2:
                state.free_link(link)
                link = None
            if node.ping_sent == 0 and \
                    now - node.pong_received > timeout // 2:
                if link is not None:
                    send_ping(state, link, m.PING)
                else:
                    # Redis opens a link to such a node at every cron and
                    # pings on it while it connects, so its ping is sent
                    # (claimed) even if the connection then fails.  Ours
                    # are throttled (reconnect_delay): without a link this
                    # cron, claim the ping as Redis would have, or failure
                    # detection would wait for the next attempt.
                    node.ping_sent = now
                continue
            # A master in a manual failover pings the replica continuously
            # (its offset travels in the header, flagged PAUSED).
            if state.mf_end and me.is_master and state.mf_replica is node \
                    and link is not None:
                send_ping(state, link, m.PING)
                continue
            if node.ping_sent == 0:
                continue
            # Any data received is a sign of life, as good as a PONG.
            if min(ping_delay, data_delay) > timeout and \
                    not node.flags & (NODE_PFAIL | NODE_FAIL):
                log.debug("*** NODE {name} possibly failing", name=node.name)
                node.flags |= NODE_PFAIL
                update_state = True
        return update_state

    # -- CLUSTER command operations ---------------------------------------------
    def done(self, todo=TODO_UPDATE_STATE | TODO_SAVE_CONFIG, fsync=True):
        """A command changed the configuration: act on it before replying.
        ``fsync=False``: nodes.conf is written but not fsync'd, as Redis
        saves after SETSLOT (a reshard runs thousands of them)."""
        self.state.todo |= todo
        self.before_sleep(fsync)

    def assign_slots(self, slots, delete: bool):
        """ADDSLOTS/DELSLOTS (and their RANGE forms), already checked."""
        state = self.state
        for slot in sorted(slots):
            # We own it now (or nobody does): no longer importing it.
            state.importing.pop(slot, None)
            if delete:
                state.del_slot(slot)
            else:
                state.add_slot(state.myself, slot)
        self.done()

    def set_slot_migrating(self, slot: int, node):
        self.state.migrating[slot] = node
        self.done(fsync=False)

    def set_slot_importing(self, slot: int, node):
        self.state.importing[slot] = node
        self.done(fsync=False)

    def set_slot_stable(self, slot: int):
        self.state.importing.pop(slot, None)
        self.state.migrating.pop(slot, None)
        self.done(fsync=False)

    def set_slot_node(self, slot: int, node):
        """SETSLOT <slot> NODE <node>: the end of a slot migration (the
        caller checked the keys rule)."""
        state = self.state
        me = state.myself
        if not state.host.count_keys_in_slot(slot):
            state.migrating.pop(slot, None)
        was_mine = state.slots[slot] is me
        state.del_slot(slot)
        state.add_slot(node, slot)
        # Redis fsyncs nodes.conf here only when the node became a replica
        # or took a new epoch.
        fsync = False
        if was_mine and node is not me and me.numslots == 0 and \
                state.settings.cluster_allow_replica_migration:
            # A master left without slots follows the node that took them.
            log.warn("Configuration change detected. Reconfiguring myself "
                     "as a replica of {name}", name=node.name)
            state.set_master(node)
            fsync = True
        if node is me and slot in state.importing:
            # A slot migrated by hand: a new epoch lets our claim win, and
            # we tell everybody at once.
            fsync = state.bump_epoch_without_consensus()
            del state.importing[slot]
            broadcast_pong(state)
        self.done(fsync=fsync)

    def take_slots(self, slots, source_epoch: int = 0):
        """An atomic slot move ends here, on the target: the slots are
        ours; one epoch bump (without consensus, as SETSLOT NODE after an
        import) and one broadcast for all of them.  ``source_epoch``: the
        source's current epoch, which our new config epoch must pass, or
        the source's older claim could win the slots back (an epoch it
        took just before, not gossiped here yet)."""
        state = self.state
        me = state.myself
        for slot in slots:
            state.importing.pop(slot, None)
            state.migrating.pop(slot, None)
            if state.slots[slot] is not me:
                state.del_slot(slot)
                state.add_slot(me, slot)
        state.bump_epoch_without_consensus(above=source_epoch)
        broadcast_pong(state)
        self.done()

    def give_slots(self, slots, node):
        """The source's side of an atomic move: the target took the slots
        (with a greater epoch); record it now rather than wait for its
        gossip, so paused clients get MOVED at once."""
        state = self.state
        for slot in slots:
            state.migrating.pop(slot, None)
            state.importing.pop(slot, None)
            state.del_slot(slot)
            state.add_slot(node, slot)
        self.done()

    def replicate(self, master):
        """CLUSTER REPLICATE (checked by the caller)."""
        self.state.set_master(master)
        self.done()

    def manual_failover(self, force: bool, takeover: bool):
        """CLUSTER FAILOVER [FORCE|TAKEOVER] on a replica (checked)."""
        failover.start_manual_failover(self.state, force, takeover)
        self.before_sleep()

    def bump_epoch(self) -> bool:
        bumped = self.state.bump_epoch_without_consensus()
        self.before_sleep()
        return bumped

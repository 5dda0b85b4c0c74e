"""Replica elections, votes, manual failover and replica migration, sans-IO.

Redis 7.0's cluster.c, as functions over the state (like failure.py):

- **The replica's election** (``handle_replica_failover``, Redis's
  clusterHandleSlaveFailover): a replica of a FAIL master with slots
  checks its data age against ``cluster-replica-validity-factor``,
  schedules its election after a delay that grows with its rank (replicas
  with a greater replication offset go first; the rank is recomputed while
  waiting as offsets arrive), then bumps currentEpoch and broadcasts
  FAILOVER_AUTH_REQUEST.  With votes from a majority of the masters that
  serve slots (size/2 + 1) it takes configEpoch = the election's epoch,
  claims its master's slots and broadcasts a PONG.  An election not won
  within max(2 x node-timeout, 2 s) expires; another may start after
  twice that.  ``cluster-replica-no-failover`` stops automatic ones.
- **The vote** (``send_failover_auth_if_needed``, Redis's
  clusterSendFailoverAuthIfNeeded): a master with slots votes once per
  epoch, never twice for replicas of one master within 2 x node-timeout,
  and only for a replica of a FAIL master (or a manual failover, FORCEACK)
  whose claimed slots have no newer configEpoch; refusals are logged with
  Redis's texts.
- **Manual failover** (CLUSTER FAILOVER): the replica sends MFSTART; the
  master pauses writes for 2 x 5 s and pings the replica with its offset,
  flagged PAUSED; once the replica has processed that offset it runs the
  election with FORCEACK.  FORCE skips the handshake; TAKEOVER skips the
  vote (a new epoch without consensus).  Abandoned after 5 s.
- **Replica migration** (``handle_replica_migration``): a replica of a
  master with the most working replicas moves to an orphaned master when
  its own master keeps more than ``cluster-migration-barrier`` of them, if
  it has the smallest name among those candidates and the master stayed
  orphaned for 5 s.

Beyond Redis 7.0 (measured by Valkey; each is a module constant, set it to
False to get Redis 7.0's behaviour exactly):

- ``FAST_FIXED_DELAY``: the fixed part of the election delay is
  min(500 ms, node-timeout / 30), and the random part is below that too
  (Redis: 500 ms + random 0..499 ms).
- ``ELECTION_ON_FAIL``: a replica schedules its election in the event that
  tells it its master is FAIL, not at the next cron tick.
- ``RANK_TIE_BY_NAME``: replicas with equal offsets are ranked by name, so
  no two replicas of a master share a rank (and a delay).
- ``STAGGER_FAILED_MASTERS``: when several masters are FAIL at once, the
  elections for the k-th of them (by name) start k x 500 ms later, so
  concurrent elections don't split the masters' votes.
"""
from __future__ import annotations

from rcluster.cluster import messages as m
from rcluster.cluster.gossip import broadcast_pong, send_ping
from rcluster.cluster.messages import Message
from rcluster.cluster.node import bitmap_slots
from rcluster.cluster.state import (TODO_HANDLE_FAILOVER,
                                    TODO_HANDLE_MANUALFAILOVER,
                                    TODO_SAVE_CONFIG, TODO_UPDATE_STATE)
from rcluster.logs import logger

log = logger("rcluster.cluster")

# Why a replica can't fail over (Redis's CLUSTER_CANT_FAILOVER_*).
CANT_NONE, CANT_DATA_AGE, CANT_WAITING_DELAY, CANT_EXPIRED, \
    CANT_WAITING_VOTES = range(5)
CANT_RELOG_PERIOD = 300_000         # ms: a reason is logged again after
CANT_MESSAGES = {
    CANT_DATA_AGE: "Disconnected from master for longer than allowed. "
                   "Please check the 'cluster-replica-validity-factor' "
                   "configuration option.",
    CANT_WAITING_DELAY: "Waiting the delay before I can start a new "
                        "failover.",
    CANT_EXPIRED: "Failover attempt expired.",
    CANT_WAITING_VOTES: "Waiting for votes, but majority still not reached.",
}
MF_TIMEOUT = 5000                   # ms for a manual failover
MF_PAUSE_MULT = 2                   # the master pauses writes 2 x that
MIGRATION_DELAY = 5000              # ms a master stays orphaned first
RANK_DELAY = 1000                   # ms per rank
STAGGER_DELAY = 500                 # ms per failed master's rank

# Beyond Redis 7.0 (see the module docstring); False = Redis's behaviour.
FAST_FIXED_DELAY = True
ELECTION_ON_FAIL = True
RANK_TIE_BY_NAME = True
STAGGER_FAILED_MASTERS = True


# -- the replica's election ----------------------------------------------------

def replica_rank(state) -> int:
    """How many replicas of our master are better placed than us: a
    greater offset (or, with RANK_TIE_BY_NAME, the same offset and a
    smaller name).  Replicas flagged nofailover don't count."""
    me = state.myself
    master = me.replicaof
    if master is None:
        return 0
    mine = state.host.repl_offset()
    rank = 0
    for replica in master.replicas:
        if replica is me or replica.cant_failover:
            continue
        if replica.repl_offset > mine or (
                RANK_TIE_BY_NAME and replica.repl_offset == mine
                and replica.name < me.name):
            rank += 1
    return rank


def failed_master_rank(state) -> int:
    """Our master's place among the FAIL masters with slots, by name."""
    master = state.myself.replicaof
    if master is None:
        return 0
    return sum(1 for node in state.nodes.values()
               if node is not master and node.is_master and node.failed
               and node.numslots and node.name < master.name)


def election_delay(state) -> int:
    """The fixed and random parts of the delay before an election."""
    if FAST_FIXED_DELAY:
        fixed = min(500, state.node_timeout // 30)
        return fixed + (state.random.randrange(fixed) if fixed > 0 else 0)
    return 500 + state.random.randrange(500)


def auth_timeouts(state):
    """(timeout, retry): how long an election may take, and when the next
    may start after one began."""
    timeout = max(state.node_timeout * 2, 2000)
    return timeout, timeout * 2


def data_age(state) -> int:
    """How old our data may be, minus the node timeout (the time it took to
    flag the master FAIL is fine)."""
    age = state.host.repl_data_age()
    if age > state.node_timeout:
        age -= state.node_timeout
    return age


def handle_replica_failover(state):
    """Redis's clusterHandleSlaveFailover: run from the cron and whenever
    a FAIL, a vote or a manual failover step arrives."""
    me = state.myself
    now = state.now()
    master = me.replicaof
    manual = bool(state.mf_end) and state.mf_can_start
    if me.is_master or master is None or \
            (not master.failed and not manual) or \
            (state.settings.cluster_replica_no_failover and not manual) or \
            master.numslots == 0:
        state.cant_failover_reason = CANT_NONE
        return
    auth_age = now - state.failover_auth_time
    auth_timeout, auth_retry = auth_timeouts(state)
    s = state.settings
    if s.cluster_replica_validity_factor and data_age(state) > (
            s.repl_ping_replica_period * 1000 +
            state.node_timeout * s.cluster_replica_validity_factor):
        if not manual:
            log_cant_failover(state, CANT_DATA_AGE)
            return

    if auth_age > auth_retry:
        state.failover_auth_time = now + election_delay(state)
        state.failover_auth_count = 0
        state.failover_auth_sent = False
        state.failover_auth_rank = replica_rank(state)
        state.failover_auth_time += state.failover_auth_rank * RANK_DELAY
        if STAGGER_FAILED_MASTERS:
            state.failover_auth_time += \
                failed_master_rank(state) * STAGGER_DELAY
        if state.mf_end:
            state.failover_auth_time = now
            state.failover_auth_rank = 0
            state.todo |= TODO_HANDLE_FAILOVER
        log.warn("Start of election delayed for {delay} milliseconds "
                 "(rank #{rank}, offset {offset}).",
                 delay=state.failover_auth_time - now,
                 rank=state.failover_auth_rank,
                 offset=state.host.repl_offset())
        # Tell the other replicas our offset, so they re-rank.
        broadcast_pong(state, local_replicas_only=True)
        return

    if not state.failover_auth_sent and not state.mf_end:
        rank = replica_rank(state)
        if rank > state.failover_auth_rank:
            added = (rank - state.failover_auth_rank) * RANK_DELAY
            state.failover_auth_time += added
            state.failover_auth_rank = rank
            log.warn("Replica rank updated to #{rank}, added {added} "
                     "milliseconds of delay.", rank=rank, added=added)

    if now < state.failover_auth_time:
        log_cant_failover(state, CANT_WAITING_DELAY)
        return
    if auth_age > auth_timeout:
        log_cant_failover(state, CANT_EXPIRED)
        return

    if not state.failover_auth_sent:
        state.current_epoch += 1
        state.failover_auth_epoch = state.current_epoch
        log.warn("Starting a failover election for epoch {epoch}.",
                 epoch=state.current_epoch)
        request_failover_auth(state)
        state.failover_auth_sent = True
        state.todo |= TODO_SAVE_CONFIG | TODO_UPDATE_STATE
        return

    if state.failover_auth_count >= state.size // 2 + 1:
        log.warn("Failover election won: I'm the new master.")
        if me.config_epoch < state.failover_auth_epoch:
            me.config_epoch = state.failover_auth_epoch
            log.warn("configEpoch set to {epoch} after successful failover",
                     epoch=me.config_epoch)
        replace_master(state)
    else:
        log_cant_failover(state, CANT_WAITING_VOTES)


def log_cant_failover(state, reason: int):
    """Log why we can't fail over: on a new reason or every 5 minutes, and
    only once the master has been failing for node-timeout + 5 s."""
    now = state.now()
    if reason == state.cant_failover_reason and \
            now - state.cant_failover_logged < CANT_RELOG_PERIOD:
        return
    state.cant_failover_reason = reason
    master = state.myself.replicaof
    if master is not None and master.failed and \
            now - master.fail_time < state.node_timeout + 5000:
        return
    state.cant_failover_logged = now
    log.warn("Currently unable to failover: {why}",
             why=CANT_MESSAGES.get(reason, "Unknown reason code."))


def request_failover_auth(state):
    """FAILOVER_AUTH_REQUEST to everybody (only masters answer); a manual
    failover flags it FORCEACK so masters vote though ours is up."""
    header = state.build_header(m.FAILOVER_AUTH_REQUEST)
    if state.mf_end:
        header.mflags |= m.MSGFLAG_FORCEACK
    state.broadcast(Message(header, m.EmptyBody()))


def replace_master(state):
    """Take our master's place (Redis's clusterFailoverReplaceYourMaster);
    the caller gave us the new configEpoch."""
    me = state.myself
    old = me.replicaof
    if me.is_master or old is None:
        return
    state.set_node_as_master(me)
    state.host.replicate(None)
    for slot in list(old.slots):
        state.del_slot(slot)
        state.add_slot(me, slot)
    state.update_state()
    state.todo |= TODO_SAVE_CONFIG
    broadcast_pong(state)
    state.reset_manual_failover()


# -- the vote (master side) ----------------------------------------------------

def send_failover_auth_if_needed(state, node, header):
    """A replica asks for our vote: give it if Redis would."""
    me = state.myself
    if me.is_replica or me.numslots == 0:
        return
    name = node.name
    if header.current_epoch < state.current_epoch:
        log.warn("Failover auth denied to {name}: reqEpoch ({req}) < "
                 "curEpoch({cur})", name=name, req=header.current_epoch,
                 cur=state.current_epoch)
        return
    if state.last_vote_epoch == state.current_epoch:
        log.warn("Failover auth denied to {name}: already voted for epoch "
                 "{epoch}", name=name, epoch=state.current_epoch)
        return
    master = node.replicaof
    force_ack = header.mflags & m.MSGFLAG_FORCEACK
    if node.is_master:
        log.warn("Failover auth denied to {name}: it is a master node",
                 name=name)
        return
    if master is None:
        log.warn("Failover auth denied to {name}: I don't know its master",
                 name=name)
        return
    if not master.failed and not force_ack:
        log.warn("Failover auth denied to {name}: its master is up",
                 name=name)
        return
    now = state.now()
    if now - master.voted_time < state.node_timeout * 2:
        log.warn("Failover auth denied to {name}: can't vote about this "
                 "master before {ms} milliseconds", name=name,
                 ms=state.node_timeout * 2 - (now - master.voted_time))
        return
    for slot in bitmap_slots(header.myslots):
        if state.is_slot_unclaimed(slot):
            continue
        owner_epoch = state.slots[slot].config_epoch
        if owner_epoch <= header.config_epoch:
            continue
        log.warn("Failover auth denied to {name}: slot {slot} epoch "
                 "({epoch}) > reqEpoch ({req})", name=name, slot=slot,
                 epoch=owner_epoch, req=header.config_epoch)
        return
    state.last_vote_epoch = state.current_epoch
    master.voted_time = now
    state.todo |= TODO_SAVE_CONFIG
    state.send(node.link, Message(state.build_header(m.FAILOVER_AUTH_ACK),
                                  m.EmptyBody()))
    log.warn("Failover auth granted to {name} for epoch {epoch}",
             name=name, epoch=state.current_epoch)


def process_auth_ack(state, sender, header):
    """A vote: it counts from a master with slots, for this election."""
    if sender.is_master and sender.numslots > 0 and \
            header.current_epoch >= state.failover_auth_epoch:
        state.failover_auth_count += 1
        state.todo |= TODO_HANDLE_FAILOVER


# -- manual failover -------------------------------------------------------------

def start_manual_failover(state, force: bool, takeover: bool):
    """CLUSTER FAILOVER on a replica (the command checked the role)."""
    state.reset_manual_failover()
    state.mf_end = state.now() + MF_TIMEOUT
    if takeover:
        log.warn("Taking over the master (user request).")
        state.bump_epoch_without_consensus()
        replace_master(state)
    elif force:
        log.warn("Forced failover user request accepted.")
        state.mf_can_start = True
        state.todo |= TODO_HANDLE_FAILOVER
    else:
        log.warn("Manual failover user request accepted.")
        master = state.myself.replicaof
        state.send(master.link, Message(state.build_header(m.MFSTART),
                                        m.EmptyBody()))


def process_mfstart(state, link, sender):
    """A replica of ours asks for a manual failover: pause writes, and send
    it our offset (flagged PAUSED) at once."""
    if sender.replicaof is not state.myself:
        return
    state.reset_manual_failover()
    now = state.now()
    state.mf_end = now + MF_TIMEOUT
    state.mf_replica = sender
    state.host.pause_writes(now + MF_TIMEOUT * MF_PAUSE_MULT)
    log.warn("Manual failover requested by replica {name}.", name=sender.name)
    send_ping(state, link, m.PING)


def master_paused_offset(state, sender, header):
    """Any packet from our master flagged PAUSED during our manual failover
    carries the offset we must reach."""
    me = state.myself
    if state.mf_end and me.is_replica and me.replicaof is sender and \
            header.mflags & m.MSGFLAG_PAUSED and state.mf_master_offset == -1:
        state.mf_master_offset = sender.repl_offset
        state.todo |= TODO_HANDLE_MANUALFAILOVER
        log.warn("Received replication offset for paused master manual "
                 "failover: {offset}", offset=state.mf_master_offset)


def manual_failover_check_timeout(state):
    if state.mf_end and state.mf_end < state.now():
        log.warn("Manual failover timed out.")
        state.reset_manual_failover()


def handle_manual_failover(state):
    """The replica waits until it processed the master's paused offset."""
    if state.mf_end == 0 or state.mf_can_start or \
            state.mf_master_offset == -1:
        return
    if state.mf_master_offset == state.host.repl_offset():
        state.mf_can_start = True
        log.warn("All master replication stream processed, manual failover "
                 "can start.")
        state.todo |= TODO_HANDLE_FAILOVER
        return
    state.todo |= TODO_HANDLE_MANUALFAILOVER


# -- replica migration ------------------------------------------------------------

def count_orphans(state):
    """(orphaned masters, max working replicas of a master, working
    replicas of our master): what the cron needs for replica migration.
    Only a replica computes them."""
    me = state.myself
    orphaned = max_replicas = mine = 0
    if not me.is_replica:
        return 0, 0, 0
    for node in state.nodes.values():
        if node is me or not node.is_master or node.failed or \
                node.in_handshake or not node.has_addr:
            continue
        ok = node.count_ok_replicas()
        if ok == 0 and node.numslots > 0 and node.flags & m.NODE_MIGRATE_TO:
            orphaned += 1
        max_replicas = max(max_replicas, ok)
        if me.replicaof is node:
            mine = ok
    return orphaned, max_replicas, mine


def handle_replica_migration(state, max_replicas: int):
    """Redis's clusterHandleSlaveMigration."""
    if state.state != m.STATE_OK:
        return
    me = state.myself
    my_master = me.replicaof
    if my_master is None:
        return
    ok = sum(1 for r in my_master.replicas
             if not r.failed and not r.timed_out)
    if ok <= state.settings.cluster_migration_barrier:
        return
    now = state.now()
    target = None
    candidate = me
    for node in state.nodes.values():
        orphaned = node.is_master and not node.failed and \
            bool(node.flags & m.NODE_MIGRATE_TO)
        working = node.count_ok_replicas() if node.is_master else 0
        if working > 0:
            orphaned = False
        if orphaned:
            if target is None and node.numslots > 0:
                target = node
            if not node.orphaned_time:
                node.orphaned_time = now
        else:
            node.orphaned_time = 0
        if working == max_replicas:
            for replica in node.replicas:
                if replica.name < candidate.name:
                    candidate = replica
    if target is not None and candidate is me and \
            now - target.orphaned_time > MIGRATION_DELAY:
        log.warn("Migrating to orphaned master {name}", name=target.name)
        state.set_master(target)
        state.todo |= TODO_SAVE_CONFIG | TODO_UPDATE_STATE

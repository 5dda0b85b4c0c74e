"""What a received bus packet does (Redis's clusterProcessPacket).

The packet was already decoded and validated by messages.FrameDecoder.
Here: identify the sender, follow its epochs, answer PING/MEET with PONG,
finish handshakes (renaming the handshake node to the sender's real name),
follow role and address changes, apply slot claims, and dispatch FAIL,
PUBLISH, UPDATE and the failover messages.
"""
from __future__ import annotations


from rcluster.cluster import failover, messages as m
from rcluster.cluster.failure import clear_failure_if_needed
from rcluster.cluster.gossip import (process_gossip_section,
                                     process_ping_extensions, send_ping)
from rcluster.cluster.messages import (NODE_FAIL, NODE_HANDSHAKE,
                                       NODE_MASTER, NODE_MIGRATE_TO,
                                       NODE_MYSELF, NODE_NOADDR,
                                       NODE_NOFAILOVER, NODE_PFAIL,
                                       NODE_SLAVE, BusProtocolError)
from rcluster.cluster.node import valid_name
from rcluster.cluster.slotconfig import (check_stale_claims,
                                         update_slots_config_with)
# Saves Redis makes with FSYNC_CONFIG are TODO_SAVE_CONFIG (epochs, UPDATE);
# the others, TODO_SAVE_LAZY (state.py).
from rcluster.cluster.state import (TODO_NODE_FAILED, TODO_SAVE_CONFIG,
                                    TODO_SAVE_LAZY, TODO_UPDATE_STATE)
from rcluster.logs import logger

log = logger("rcluster.cluster")

_PING_TYPES = (m.PING, m.PONG, m.MEET)
# Sender names already found valid: the same few arrive again and again.
_VALID_SENDERS: set = set()


def process_packet(state, link, message):
    header, body = message.header, message.body
    msg_type = header.type
    if msg_type < m.TYPE_COUNT:
        state.stats_received[msg_type] += 1
    if header.sender not in _VALID_SENDERS:
        if not valid_name(header.sender):
            # Names are our dictionary keys: a peer that sends a malformed
            # one is broken, and its link is dropped like any bad frame.
            raise BusProtocolError(f"invalid sender name {header.sender!r}")
        if len(_VALID_SENDERS) >= 4096:
            _VALID_SENDERS.clear()
        _VALID_SENDERS.add(header.sender)
    now = state.now()
    sender = sender_of(state, link, header)
    if sender is not None:
        sender.data_received = now
        if not sender.flags & NODE_HANDSHAKE:
            follow_epochs(state, sender, header, now)
            failover.master_paused_offset(state, sender, header)

    if msg_type in (m.PING, m.MEET):
        answer_ping(state, link, header, body, sender)
    if msg_type in _PING_TYPES:
        process_ping(state, link, header, body, sender, now)
    elif msg_type == m.FAIL:
        process_fail(state, header, body, sender, now)
    elif msg_type in (m.PUBLISH, m.PUBLISHSHARD):
        if sender is not None:
            state.host.deliver(body.channel, body.message,
                               msg_type == m.PUBLISHSHARD)
    elif msg_type == m.FAILOVER_AUTH_REQUEST:
        if sender is not None:
            failover.send_failover_auth_if_needed(state, sender, header)
    elif msg_type == m.FAILOVER_AUTH_ACK:
        if sender is not None:
            failover.process_auth_ack(state, sender, header)
    elif msg_type == m.MFSTART:
        if sender is not None:
            failover.process_mfstart(state, link, sender)
    elif msg_type == m.UPDATE:
        process_update(state, body, sender)
    elif msg_type == m.MODULE:
        pass                        # no module receives cluster messages
    else:
        log.warn("Received unknown packet type: {type}", type=msg_type)


def sender_of(state, link, header):
    """The known node that sent the packet.  A handshake node still has a
    random name, so it is never taken from the link then."""
    node = link.node
    if node is not None and not node.flags & NODE_HANDSHAKE:
        return node
    sender = state.lookup(header.sender)
    if sender is not None and node is None:
        # First packet on an inbound link: now we know who is talking.
        state.set_inbound_link(sender, link)
    return sender


def follow_epochs(state, sender, header, now):
    if header.current_epoch > state.current_epoch:
        state.current_epoch = header.current_epoch
    if header.config_epoch > sender.config_epoch:
        sender.config_epoch = header.config_epoch
        state.todo |= TODO_SAVE_CONFIG
    sender.repl_offset = header.offset
    sender.repl_offset_time = now


def answer_ping(state, link, header, body, sender):
    """PING and MEET: learn our own address, adopt a MEETing stranger,
    and reply with a PONG."""
    me = state.myself
    announce_ip = state.settings.cluster_announce_ip
    # Only nodes that MEET us use our real address, so that is where we
    # learn it (or from any PING, while we know none).
    if (header.type == m.MEET or not me.ip) and not announce_ip:
        if link.local_ip and link.local_ip != me.ip:
            me.ip = link.local_ip
            log.warn("IP address for this node updated to {ip}", ip=me.ip)
            state.todo |= TODO_SAVE_LAZY
    if sender is None and header.type == m.MEET:
        node = state.create_node(None, NODE_HANDSHAKE)
        node.ip = header.myip or link.peer_ip
        node.port, node.pport, node.cport = header.port, header.pport, header.cport
        state.add_node(node)
        state.todo |= TODO_SAVE_LAZY
        # As Redis does; only nodes we already know can be refreshed by
        # it, since new nodes are learned from known senders only.
        process_gossip_section(state, header, body, link)
    send_ping(state, link, m.PONG)


def update_address_if_needed(state, node, link, header) -> bool:
    """The node talks to us from a new address (or announces one): use it
    and reconnect.  Never on its own outbound link."""
    if link is node.link:
        return False
    ip = header.myip or link.peer_ip
    if not ip:
        return False
    if node.port == header.port and node.cport == header.cport and \
            node.pport == header.pport and node.ip == ip:
        return False
    node.ip = ip
    node.port, node.pport, node.cport = header.port, header.pport, header.cport
    if node.link is not None:
        state.free_link(node.link)
    node.flags &= ~NODE_NOADDR
    log.warn("Address updated for node {name}, now {ip}:{port}",
             name=node.name, ip=node.ip, port=node.port)
    if state.myself.is_replica and state.myself.replicaof is node:
        state.host.replicate(node)
    return True


def finish_handshake(state, link, header, sender) -> bool:
    """First PONG on our link to a handshake node.  Returns False if the
    link is gone (the node turned out to be one we already knew)."""
    node = link.node
    if sender is not None:
        log.info("Handshake: we already know node {name}, updating the "
                 "address if needed.", name=sender.name, redis_level="verbose")
        if update_address_if_needed(state, sender, link, header):
            state.todo |= TODO_SAVE_LAZY | TODO_UPDATE_STATE
        state.del_node(node)
        return False
    name = header.sender.decode("latin-1")
    state.rename_node(node, name)
    log.debug("Handshake with node {name} completed.", name=name)
    node.flags &= ~NODE_HANDSHAKE
    node.flags |= header.flags & (NODE_MASTER | NODE_SLAVE)
    state.todo |= TODO_SAVE_LAZY
    return True


def process_ping(state, link, header, body, sender, now):
    """PING, PONG and MEET: handshake, roles, slots and gossip."""
    if not link.inbound:
        node = link.node
        if node.flags & NODE_HANDSHAKE:
            if not finish_handshake(state, link, header, sender):
                return
        elif node.name.encode() != header.sender:
            # Someone else answers at this node's address: it has none.
            log.debug("PONG contains mismatching sender ID. About node "
                      "{name} added {age} ms ago, having flags {flags}",
                      name=node.name, age=now - node.ctime, flags=node.flags)
            node.flags |= NODE_NOADDR
            node.ip, node.port, node.pport, node.cport = "", 0, 0, 0
            state.free_link(link)
            state.todo |= TODO_SAVE_LAZY
            return

    if sender is not None:
        # NOFAILOVER is the sender's to say.
        sender.flags = (sender.flags & ~NODE_NOFAILOVER) | \
            (header.flags & NODE_NOFAILOVER)
        if header.type == m.PING and not sender.flags & NODE_HANDSHAKE and \
                update_address_if_needed(state, sender, link, header):
            state.todo |= TODO_SAVE_LAZY | TODO_UPDATE_STATE

    if not link.inbound and header.type == m.PONG:
        node = link.node
        node.pong_received = now
        node.ping_sent = 0
        if node.timed_out:
            # A PFAIL goes away by itself; FAIL needs more care.
            node.flags &= ~NODE_PFAIL
            state.todo |= TODO_SAVE_LAZY | TODO_UPDATE_STATE
        elif node.failed:
            clear_failure_if_needed(state, node)

    if sender is None:
        return
    follow_role(state, sender, header)

    # Slots: only if the claim differs from what we know of its shard.
    sender_is_master = sender.flags & NODE_MASTER
    sender_master = sender if sender_is_master else sender.replicaof
    dirty = sender_master is not None and \
        claim_differs(state, sender, sender_master, header)
    if dirty:
        if sender_is_master:
            update_slots_config_with(state, sender, header.config_epoch,
                                     header.myslots)
        check_stale_claims(state, sender, header.config_epoch, header.myslots)

    me = state.myself
    if sender_is_master and me.flags & NODE_MASTER and \
            header.config_epoch == me.config_epoch:
        state.handle_config_epoch_collision(sender)

    process_gossip_section(state, header, body, link)
    process_ping_extensions(state, body, sender)


def claim_differs(state, sender, sender_master, header) -> bool:
    """Whether the slots the sender claims differ from those we know its
    shard's master has.  Fast path: the same bitmap bytes as the last
    claim found equal, with the same master whose slots have not changed
    since, is equal again without comparing the bitmaps."""
    raw = header.myslots_raw
    if not state.fast_paths or raw is None:
        return sender_master.bitmap != header.myslots
    seen = sender.claim_seen
    if seen is not None and seen[1] is sender_master and \
            seen[2] == sender_master.slots_version and seen[0] == raw:
        return False
    if sender_master.bitmap != header.myslots:
        return True
    sender.claim_seen = (raw, sender_master, sender_master.slots_version)
    return False


def follow_role(state, sender, header):
    """The sender says whether it is a master or whose replica it is."""
    if header.slaveof is None:
        state.set_node_as_master(sender)
        return
    master = state.lookup(header.slaveof)
    if sender.is_master:
        # A master turned into a replica.
        state.del_node_slots(sender)
        sender.flags = (sender.flags & ~(NODE_MASTER | NODE_MIGRATE_TO)) \
            | NODE_SLAVE
        state.todo |= TODO_SAVE_LAZY | TODO_UPDATE_STATE
    if master is not None and sender.replicaof is not master:
        if sender.replicaof is not None:
            sender.replicaof.remove_replica(sender)
        master.add_replica(sender)
        sender.replicaof = master
        state.todo |= TODO_SAVE_LAZY


def process_fail(state, header, body, sender, now):
    name = body.nodename.decode("latin-1")
    if sender is None:
        log.info("Ignoring FAIL message from unknown node {sender} about "
                 "{name}", sender=header.sender.decode("latin-1"), name=name)
        return
    failing = state.lookup(body.nodename)
    if failing is not None and not failing.flags & (NODE_FAIL | NODE_MYSELF):
        log.info("FAIL message received from {sender} about {name}",
                 sender=sender.name, name=name)
        failing.flags = (failing.flags & ~NODE_PFAIL) | NODE_FAIL
        failing.fail_time = now
        state.todo |= TODO_SAVE_LAZY | TODO_UPDATE_STATE | TODO_NODE_FAILED


def process_update(state, body, sender):
    if sender is None:
        return
    node = state.lookup(body.nodename)
    if node is None or node.config_epoch >= body.config_epoch:
        return
    if node.is_replica:
        state.set_node_as_master(node)
    node.config_epoch = body.config_epoch
    state.todo |= TODO_SAVE_CONFIG
    update_slots_config_with(state, node, body.config_epoch, body.slots)

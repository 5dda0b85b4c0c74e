"""PING, PONG and MEET: what we tell about other nodes, and what we learn.

Every PING/PONG/MEET carries a gossip section: about a tenth of the known
nodes (at least 3), picked at random (never the receiver itself), plus
every node we think is PFAIL so failure reports spread fast.  Receivers
use the section to learn new nodes (only from senders they already know),
collect failure reports from masters, refresh pong times, and follow
address changes.
"""
from __future__ import annotations


from rcluster.cluster import messages as m
from rcluster.cluster.failure import mark_failing_if_needed
from rcluster.cluster.messages import (
    NODE_FAIL, NODE_HANDSHAKE, NODE_NOADDR, NODE_PFAIL, Gossip, Message,
    PingBody)
from rcluster.cluster.node import valid_name
from rcluster.logs import logger

log = logger("rcluster.cluster")


def select_gossip(state, receiver=None) -> list:
    """The nodes to gossip about in one packet to ``receiver`` (Redis's
    clusterSendPing).  Unlike Redis, which may pick the receiver and so
    waste an entry, the receiver is never told about itself: every entry
    can teach it something, and a cluster converges a little faster."""
    state.pings_sent += 1
    stamp = state.pings_sent
    nodes = list(state.nodes.values())
    fresh = len(nodes) - 2          # all but myself and the receiver
    wanted = min(max(len(nodes) // 10, 3), fresh)
    chosen = []
    me = state.myself
    # random.choice(nodes), spelled out (the same draws, so the same
    # sequence): two Python calls less per pick, three or four per ping.
    getrandbits, count = state.random.getrandbits, len(nodes)
    bits = count.bit_length()
    for _ in range(wanted * 3):
        if fresh <= 0 or len(chosen) >= wanted:
            break
        pick = getrandbits(bits)
        while pick >= count:
            pick = getrandbits(bits)
        node = nodes[pick]
        flags = node.flags
        if node is me or node is receiver or flags & NODE_PFAIL:
            continue                # PFAIL nodes are all added below
        if flags & (NODE_HANDSHAKE | NODE_NOADDR) or (
                node.link is None and node.numslots == 0):
            fresh -= 1
            continue
        if node.last_in_ping_gossip == stamp:
            continue
        node.last_in_ping_gossip = stamp
        chosen.append(node)
        fresh -= 1
    pfail_wanted = state.stats_pfail_nodes
    for node in nodes:
        if pfail_wanted <= 0:
            break
        if node.flags & (NODE_HANDSHAKE | NODE_NOADDR) or \
                not node.flags & NODE_PFAIL:
            continue
        chosen.append(node)
        pfail_wanted -= 1
    return chosen


def send_ping(state, link, msg_type: int):
    """Send a PING, PONG or MEET with a gossip section on ``link``."""
    if not link.inbound and msg_type == m.PING:
        link.node.ping_sent = state.now()
    header = state.build_header(msg_type)
    body = PingBody([Gossip(n.name.encode(), n.ping_sent // 1000,
                            n.pong_received // 1000, n.ip, n.port, n.cport,
                            n.flags, n.pport)
                     for n in select_gossip(state, link.node)],
                    hostname=state.myself.hostname or None)
    state.send(link, Message(header, body))


def broadcast_pong(state, local_replicas_only: bool = False):
    """Tell every connected node (or our shard's replicas) our config now."""
    me = state.myself
    for node in list(state.nodes.values()):
        if node.link is None or node is me or node.in_handshake:
            continue
        if local_replicas_only and not (
                node.is_replica and node.replicaof is not None and
                (node.replicaof is me or node.replicaof is me.replicaof)):
            continue
        send_ping(state, node.link, m.PONG)


def process_gossip_section(state, header, body, link):
    """Learn from what the sender says about other nodes."""
    sender = link.node if link.node is not None else state.lookup(header.sender)
    me = state.myself
    now = state.now()
    validity = state.report_validity
    known = state.nodes
    # Failure reports count only when a master sends them.
    reporter = sender if sender is not None and sender.is_master else None
    for g in body.gossip:
        flags = g.flags
        failing = flags & (NODE_FAIL | NODE_PFAIL)
        # Known names need no check (state.lookup); others go through it.
        node = known.get(g.nodename.decode("latin-1")) or \
            state.lookup(g.nodename)
        if node is None:
            # A new node: trust it only from a node we know, never when it
            # has no address, nor while it is blacklisted by FORGET.
            name = g.nodename.decode("latin-1")
            if sender is not None and not flags & NODE_NOADDR and \
                    valid_name(name) and not state.blacklisted(name):
                new = state.create_node(name, flags)
                new.ip, new.port, new.pport, new.cport = \
                    g.ip, g.port, g.pport, g.cport
                state.add_node(new)
            continue
        if reporter is not None and node is not me:
            if failing:
                if node.add_failure_report(reporter, now):
                    log.info("Node {sender} reported node {node} as not "
                             "reachable.", sender=reporter.name,
                             node=node.name, redis_level="verbose")
                mark_failing_if_needed(state, node)
            elif node.fail_reports and \
                    node.del_failure_report(reporter, validity, now):
                log.info("Node {sender} reported node {node} is back online.",
                         sender=reporter.name, node=node.name,
                         redis_level="verbose")
        # Someone talked to the node recently: borrow its pong time, when
        # we have no ping pending and no doubt about the node ourselves.
        if not failing and node.ping_sent == 0 and (
                not node.fail_reports or
                node.failure_reports_count(validity, now) == 0):
            pong = g.pong_received * 1000
            if pong <= now + 500 and pong > node.pong_received:
                node.pong_received = pong
        # We can't reach the node but the sender can, at another address:
        # move to it.
        if node.flags & (NODE_FAIL | NODE_PFAIL) and \
                not flags & NODE_NOADDR and not failing and \
                (node.ip.lower() != g.ip.lower() or node.port != g.port
                 or node.cport != g.cport):
            if node.link is not None:
                state.free_link(node.link)
            node.ip, node.port, node.pport, node.cport = \
                g.ip, g.port, g.pport, g.cport
            node.flags &= ~NODE_NOADDR


def process_ping_extensions(state, body, sender):
    """7.0 knows the hostname extension: absent means no hostname."""
    for ext in body.unknown_extensions:
        log.warn("Received unknown extension type {type}", type=ext.type)
    sender.hostname = body.hostname or ""

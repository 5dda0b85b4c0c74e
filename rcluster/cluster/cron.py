"""The cluster timer, run every 100 ms (Redis's clusterCron), sans-IO.

Each run: drop handshakes that timed out, open missing links, ping one
random node per second (the oldest pong among 5 sampled), ping any node
not pinged for node-timeout/2, reconnect links that went quiet, and mark
nodes PFAIL when their PONG is late by more than node-timeout.
"""
from __future__ import annotations


from rcluster.cluster import messages as m
from rcluster.cluster.gossip import send_ping
from rcluster.cluster.messages import (NODE_FAIL, NODE_HANDSHAKE, NODE_MYSELF,
                                       NODE_NOADDR, NODE_PFAIL, STATE_FAIL)
from rcluster.logs import logger

log = logger("rcluster.cluster")


def cluster_cron(state):
    state.iteration += 1
    state.refresh_myself()
    connect_links(state)
    if state.iteration % 10 == 0:
        ping_random_node(state)
    if detect_failures(state) or state.state == STATE_FAIL:
        state.update_state()
    if state.failover is not None:
        state.failover.cron()       # a replica's failover duties


def connect_links(state):
    """Handshake timeouts and reconnections; counts PFAIL nodes too."""
    now = state.now()
    handshake_timeout = max(state.node_timeout, 1000)
    state.stats_pfail_nodes = 0
    for node in list(state.nodes.values()):
        if node.flags & (NODE_MYSELF | NODE_NOADDR):
            continue
        if node.flags & NODE_PFAIL:
            state.stats_pfail_nodes += 1
        if node.in_handshake and now - node.ctime > handshake_timeout:
            state.del_node(node)
            continue
        if node.link is None:
            state.connect(node)


def ping_random_node(state):
    """Ping the node with the oldest pong among a few random ones."""
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


def detect_failures(state) -> bool:
    """Reconnect quiet links, keep pings flowing, flag late nodes PFAIL.
    Returns whether cluster_state must be evaluated again."""
    timeout = state.node_timeout
    update_state = False
    for node in list(state.nodes.values()):
        if node.flags & (NODE_MYSELF | NODE_NOADDR | NODE_HANDSHAKE):
            continue
        now = state.now()
        ping_delay = now - node.ping_sent
        data_delay = now - node.data_received
        link = node.link
        # Waiting for a PONG for half the timeout with no traffic at all:
        # the connection may be the problem, so open a new one.
        if link is not None and now - link.ctime > timeout and \
                node.ping_sent and ping_delay > timeout // 2 and \
                data_delay > timeout // 2:
            state.free_link(link)
            link = None
        if link is not None and node.ping_sent == 0 and \
                now - node.pong_received > timeout // 2:
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

"""Failure detection: PFAIL is our own opinion, FAIL is the cluster's.

A node that does not answer our PING within node-timeout is PFAIL (see
cron.py).  It becomes FAIL when we think it PFAIL and a majority of the
masters serving slots reported it PFAIL/FAIL in their gossip within 2 x
node-timeout; we then broadcast FAIL so every reachable node agrees.  FAIL
is cleared when the node is reachable again and either is a replica or a
master without slots, or nobody took its slots over after 2 x node-timeout.
"""
from __future__ import annotations


from rcluster.cluster import messages as m
from rcluster.cluster.messages import NODE_FAIL, NODE_PFAIL, FailBody, Message
from rcluster.cluster.state import (FAIL_UNDO_TIME_MULT, TODO_NODE_FAILED,
                                    TODO_SAVE_LAZY, TODO_UPDATE_STATE)
from rcluster.logs import logger

log = logger("rcluster.cluster")


def mark_failing_if_needed(state, node):
    if not node.timed_out or node.failed:
        return
    failures = state.failure_reports_count(node)
    if state.myself.is_master:
        failures += 1               # our own PFAIL counts as a vote
    if failures < state.size // 2 + 1:
        return
    log.info("Marking node {name} as failing (quorum reached).", name=node.name)
    node.flags = (node.flags & ~NODE_PFAIL) | NODE_FAIL
    node.fail_time = state.now()
    # Even a replica broadcasts: the reports it counted came from masters.
    send_fail(state, node.name)
    state.todo |= TODO_UPDATE_STATE | TODO_SAVE_LAZY | TODO_NODE_FAILED


def clear_failure_if_needed(state, node):
    """A FAIL node answered again; clear FAIL if that is safe."""
    if node.is_replica or node.numslots == 0:
        log.info("Clear FAIL state for node {name}: {what} is reachable "
                 "again.", name=node.name,
                 what="replica" if node.is_replica else "master without slots")
        node.flags &= ~NODE_FAIL
        state.todo |= TODO_UPDATE_STATE | TODO_SAVE_LAZY
    if node.is_master and node.numslots > 0 and \
            state.now() - node.fail_time > state.node_timeout * FAIL_UNDO_TIME_MULT:
        log.info("Clear FAIL state for node {name}: is reachable again and "
                 "nobody is serving its slots after some time.", name=node.name)
        node.flags &= ~NODE_FAIL
        state.todo |= TODO_UPDATE_STATE | TODO_SAVE_LAZY


def send_fail(state, name: str):
    header = state.build_header(m.FAIL)
    state.broadcast(Message(header, FailBody(name.encode())))

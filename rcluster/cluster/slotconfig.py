"""Slot ownership by configEpoch, and UPDATE messages.

A master's PING/PONG claims slots under its configEpoch; a claim wins over
the current owner when the slot is free or the claimer's epoch is greater.
When a node claims slots we know belong to a master with a greater epoch,
we send it an UPDATE about that master, so a stale node learns the new
configuration even if the new owner can't reach it.
"""
from __future__ import annotations


from rcluster.cluster import messages as m
from rcluster.cluster.messages import SLOTS, Message, UpdateBody
from rcluster.cluster.node import bitmap_slots
from rcluster.cluster.state import TODO_SAVE_ALL
from rcluster.logs import logger

log = logger("rcluster.cluster")


def update_slots_config_with(state, sender, sender_epoch: int, bitmap: int):
    """Rebind the slots ``sender`` claims under ``sender_epoch`` wherever
    its claim is newer than ours, then react if we lost our slots."""
    me = state.myself
    if sender is me:
        log.warn("Discarding UPDATE message about myself.")
        return
    cur_master = me if me.is_master else me.replicaof
    # Bit operations first, so that a PONG costs O(slots that differ),
    # not O(16384): a reshard's every SETSLOT NODE broadcasts one.
    held = sender.bitmap
    not_claimed = state.not_claimed
    if not_claimed:
        still = (held & bitmap).to_bytes(SLOTS // 8, "little")
        for slot in [s for s in not_claimed if still[s >> 3] >> (s & 7) & 1]:
            not_claimed.discard(slot)
    new_master = None
    migrated_our_slots = 0
    dirty_slots = []
    table = state.slots
    # Slots nobody owns are taken together (fast path: a joining node
    # learns whole shards), the others one by one below.
    free = [] if state.fast_paths else None
    # Only the claimed slots the sender doesn't hold can change owner.
    for slot in bitmap_slots(bitmap & ~held):
        owner = table[slot]
        # A slot being imported is only changed by hand (redis-cli).
        if slot in state.importing:
            continue
        if owner is None and free is not None:
            free.append(slot)
            continue
        if state.is_slot_unclaimed(slot) or owner.config_epoch < sender_epoch:
            if owner is me and sender is not me and \
                    state.host.count_keys_in_slot(slot):
                dirty_slots.append(slot)
            if owner is not None and owner is cur_master:
                new_master = sender
                migrated_our_slots += 1
            state.del_slot(slot)
            state.add_slot(sender, slot)
            state.not_claimed.discard(slot)
            state.todo |= TODO_SAVE_ALL
    if free:
        state.add_slots(sender, free)
        if not_claimed:
            not_claimed.difference_update(free)
        state.todo |= TODO_SAVE_ALL
    # Slots the sender stopped claiming stay bound to it (clients get a
    # few redirections rather than errors) but we won't vouch for them.
    stopped = sender.bitmap & ~bitmap
    if stopped:
        not_claimed.update(bitmap_slots(stopped))

    if new_master is not None and cur_master.numslots == 0 and (
            state.settings.cluster_allow_replica_migration
            or bitmap.bit_count() == migrated_our_slots):
        log.warn("Configuration change detected. Reconfiguring myself as a "
                 "replica of {name}", name=sender.name)
        state.set_master(sender)
        state.todo |= TODO_SAVE_ALL
    elif me.replicaof is not None and me.replicaof.replicaof is not None \
            and me.replicaof.replicaof is not me:
        grand = me.replicaof.replicaof
        log.warn("I'm a sub-replica! Reconfiguring myself as a replica of "
                 "grandmaster {name}", name=grand.name)
        state.set_master(grand)
        state.todo |= TODO_SAVE_ALL
    elif dirty_slots:
        # Still a master, but we lost slots we have keys for: drop them.
        for slot in dirty_slots:
            state.host.delete_keys_in_slot(slot)


def send_update(state, link, node):
    """Tell the node at the other end of ``link`` about ``node``'s slots."""
    if link is None:
        return
    slots = node.bitmap
    if state.not_claimed:
        slots &= ~m.slots_to_bitmap(state.not_claimed)
    header = state.build_header(m.UPDATE)
    state.send(link, Message(header, UpdateBody(node.config_epoch,
                                                node.name.encode(), slots)))


def check_stale_claims(state, sender, sender_epoch: int, bitmap: int):
    """The sender claims slots that a master with a greater epoch owns:
    send it one UPDATE about that master."""
    table = state.slots
    # The slots the sender holds are not stale: skip them with bit ops.
    for slot in bitmap_slots(bitmap & ~sender.bitmap):
        owner = table[slot]
        if owner is sender or state.is_slot_unclaimed(slot):
            continue
        if owner.config_epoch > sender_epoch:
            log.info("Node {sender} has old slots configuration, sending an "
                     "UPDATE message about {owner}", sender=sender.name,
                     owner=owner.name, redis_level="verbose")
            send_update(state, sender.link, owner)
            return

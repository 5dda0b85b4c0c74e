"""Replication, as Redis 7.0 speaks it: the backlog and replication ids
(backlog.py), the master side (master.py), the replica side as a sans-IO
PSYNC state machine (replica.py) and the Twisted adapters (service.py)."""

"""``rcluster-cluster start|stop|status|clean|reshard|rebalance``: a local cluster in one command.

In the spirit of Redis's utils/create-cluster: ``start`` launches N masters
(default 3) and R replicas per master (``--replicas``, default 1) as
daemonized ``twistd rcluster`` processes on 127.0.0.1 from a base port
(masters first), gives each master its share of the 16384 slots and its
own config epoch (as ``redis-cli --cluster create`` does), joins them with
CLUSTER MEET, attaches the replicas with CLUSTER REPLICATE, waits for
``cluster_state:ok`` on every node and every replica's link to be up,
and prints how to connect.  Everything lives under one run directory (default
./run/cluster), a sub-directory per port with the node's pid file, log
and nodes.conf.

``stop`` stops exactly the processes ``start`` launched, found by their
pid files; the nodes.conf files stay, so the next ``start`` brings the
same cluster back.  ``status`` shows each node's view, role and (for a
replica) the state of its replication link; ``clean`` stops
the nodes and removes what ``start`` created.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from rcluster.admin import AdminClient, ReplyError, info_fields

SLOTS = 16384
BUS_PORT_OFFSET = 10000
NODE_FILES = ("rcluster.pid", "node.log", "nodes.conf")


class Failure(Exception):
    """start/stop can't do what was asked; the text says why."""


# -- the run directory ----------------------------------------------------------

def node_dir(run_dir, port):
    return os.path.join(run_dir, str(port))


def pidfile(run_dir, port):
    return os.path.join(node_dir(run_dir, port), "rcluster.pid")


def node_ports(run_dir):
    """The ports of the nodes ``start`` ever created in run_dir."""
    if not os.path.isdir(run_dir):
        return []
    return sorted(int(name) for name in os.listdir(run_dir)
                  if name.isdigit() and os.path.isdir(node_dir(run_dir, int(name))))


def running_nodes(run_dir) -> dict:
    """{port: pid} of the nodes started from run_dir that still run."""
    running = {}
    for port in node_ports(run_dir):
        pid = read_pid(pidfile(run_dir, port))
        if pid is not None and is_our_node(pid, pidfile(run_dir, port)):
            running[port] = pid
    return running


def read_pid(path):
    try:
        with open(path) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def is_our_node(pid, path) -> bool:
    """Whether pid is alive and is the twistd that writes this pid file
    (a stale pid file's pid may belong to another process by now)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        try:
            os.kill(pid, 0)         # no /proc: trust a live pid
        except OSError:
            return False
        return True
    return os.fsencode(path) in argv


def process_gone(pid) -> bool:
    """Whether pid has exited (a zombie not yet reaped has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def port_in_use(port) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def port_listened(port) -> bool:
    """Whether something accepts connections on port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


# Linux keeps a closed connection's end in TIME-WAIT for 60 s.
TIME_WAIT = 65.0


def busy_ports(ports, timeout=TIME_WAIT, sleep=time.sleep,
               clock=time.monotonic, say=print) -> list:
    """The ports (and bus ports) that can't be listened on.  One held by
    a connection rather than a listener - a client's ephemeral port, in
    TIME-WAIT after a burst of loopback traffic (the bus ports 40001...
    lie in Linux's ephemeral range) - frees itself: wait for it."""
    wanted = [p for port in ports for p in (port, port + BUS_PORT_OFFSET)]
    deadline = clock() + timeout
    told = False
    while True:
        busy = [p for p in wanted if port_in_use(p)]
        if not busy or any(map(port_listened, busy)) or clock() >= deadline:
            return busy
        if not told:
            say(f"rcluster-cluster: port(s) {', '.join(map(str, busy))} "
                f"held by closed connections (TIME-WAIT): waiting for them")
            told = True
        sleep(1.0)


# -- talking to nodes -------------------------------------------------------------

def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except (OSError, ConnectionError, ReplyError):
            pass
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def call(port, *args, timeout=5.0):
    with AdminClient(port=port, timeout=timeout) as client:
        return client.call(*args)


def cluster_info(port) -> dict:
    return info_fields(call(port, "CLUSTER", "INFO", timeout=1))


def slot_ranges(count):
    """Split the slots in ``count`` contiguous ranges, as redis-cli does."""
    per = SLOTS / count
    return [(round(i * per), round((i + 1) * per) - 1) for i in range(count)]


# -- start ----------------------------------------------------------------------

def twistd_command(run_dir, port, node_timeout):
    directory = node_dir(run_dir, port)
    twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    if not os.path.exists(twistd):
        twistd = shutil.which("twistd") or "twistd"
    return [twistd, "--pidfile", pidfile(run_dir, port),
            "--logfile", os.path.join(directory, "node.log"),
            "rcluster", "--port", str(port), "--bind", "127.0.0.1",
            "--dir", directory, "--cluster-node-timeout", str(node_timeout),
            "--set", "cluster-config-file=nodes.conf"]


def launch(run_dir, ports, node_timeout):
    """Start the twistd daemons side by side; each parent returns once its
    node listens (or says why it can't)."""
    launching = {}
    for port in ports:
        os.makedirs(node_dir(run_dir, port), exist_ok=True)
        launching[port] = subprocess.Popen(
            twistd_command(run_dir, port, node_timeout),
            cwd=node_dir(run_dir, port), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    errors = []
    for port, proc in launching.items():
        output, _ = proc.communicate()
        if proc.returncode != 0:
            reason = output.strip().splitlines()[0] if output.strip() else \
                f"twistd exited with status {proc.returncode}"
            errors.append(f"node {port}: {reason} (see "
                          f"{os.path.join(node_dir(run_dir, port), 'node.log')})")
    if errors:
        raise Failure("could not start every node:\n  " + "\n  ".join(errors))


def create(ports, masters):
    """Slots and config epochs first (so no node waits out the minority
    rejoin delay, and no epoch collision needs resolving), then MEET;
    then each replica (the ports after the masters', dealt round-robin)
    replicates its master once it knows it."""
    for epoch, (port, (low, high)) in enumerate(
            zip(ports[:masters], slot_ranges(masters)), start=1):
        call(port, "CLUSTER", "ADDSLOTSRANGE", low, high)
        call(port, "CLUSTER", "SET-CONFIG-EPOCH", epoch)
    for port in ports[1:]:
        call(ports[0], "CLUSTER", "MEET", "127.0.0.1", port)
    for i, port in enumerate(ports[masters:]):
        master = ports[i % masters]
        master_id = call(master, "CLUSTER", "MYID").decode()
        wait_for(lambda port=port, master_id=master_id:
                 master_id.encode() in call(port, "CLUSTER", "NODES", timeout=1),
                 30, f"node {port} to learn its master {master}")
        call(port, "CLUSTER", "REPLICATE", master_id)


def replication_fields(port) -> dict:
    return info_fields(call(port, "INFO", "replication", timeout=1))


def replica_link_up(port) -> bool:
    fields = replication_fields(port)
    return fields.get("role") != "slave" or \
        fields.get("master_link_status") == "up"


def start(args):
    total = args.nodes * (1 + args.replicas)
    run_dir, ports = args.dir, [args.base_port + i for i in range(total)]
    running = running_nodes(run_dir)
    if running:
        raise Failure(f"a cluster started from {run_dir} is already running "
                      f"(ports {describe_ports(running)}); "
                      f"'{stop_hint(args)}' stops it")
    known = [p for p in node_ports(run_dir)
             if os.path.exists(os.path.join(node_dir(run_dir, p), "nodes.conf"))]
    if known and known != ports:
        raise Failure(f"{run_dir} holds a cluster on ports {describe_ports(known)}, "
                      f"not {describe_ports(ports)}: start it with the same "
                      f"--nodes/--base-port, or "
                      f"'{stop_hint(args).replace(' stop', ' clean')}' first")
    busy = busy_ports(ports)
    if busy:
        raise Failure(f"port(s) {', '.join(map(str, busy))} already in use on "
                      f"127.0.0.1: choose another --base-port")
    remove_pidfiles(run_dir)            # none runs: any left is stale
    try:
        launch(run_dir, ports, args.node_timeout)
        for port in ports:
            wait_for(lambda port=port: call(port, "PING", timeout=1) == b"PONG",
                     30, f"the node on port {port}")
        if not known:
            create(ports, args.nodes)
        for port in ports:
            wait_for(lambda port=port: cluster_info(port)["cluster_state"] == "ok",
                     60, f"cluster_state:ok on port {port}")
        for port in ports:
            wait_for(lambda port=port: replica_link_up(port), 60,
                     f"the replication link of the replica on port {port}")
    except BaseException:
        # All or nothing: no half-started cluster is left behind, and no
        # half-created one for the next start to bring back.
        stop_nodes(run_dir)
        if not known:
            remove_node_files(run_dir)
        raise
    what = "restarted from its nodes.conf files" if known else "created"
    shape = f"{args.nodes} masters" + (
        f" + {total - args.nodes} replicas" if total > args.nodes else "")
    print(f"rcluster: {shape} on 127.0.0.1:{describe_ports(ports)} "
          f"({what}), cluster_state:ok")
    print(f"  connect:  redis-cli -c -p {ports[0]}")
    print(f"  check:    redis-cli --cluster check 127.0.0.1:{ports[0]}")
    print(f"  stop:     {stop_hint(args)}")


def stop_hint(args):
    default = os.path.abspath(os.path.join("run", "cluster"))
    return "rcluster-cluster stop" + ("" if args.dir == default else f" --dir {args.dir}")


def describe_ports(ports) -> str:
    ports = sorted(ports)
    if ports == list(range(ports[0], ports[-1] + 1)) and len(ports) > 1:
        return f"{ports[0]}-{ports[-1]}"
    return ",".join(map(str, ports))


# -- stop, status, clean -------------------------------------------------------------

def stop_nodes(run_dir, timeout=15.0) -> list:
    """SIGTERM every node started from run_dir (SIGKILL after timeout);
    returns the ports stopped."""
    running = running_nodes(run_dir)
    for pid in running.values():
        signal_pid(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    left = dict(running)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = {port: pid for port, pid in left.items()
                if not process_gone(pid)}
    for pid in left.values():
        signal_pid(pid, signal.SIGKILL)
    remove_pidfiles(run_dir)            # twistd removes its own on exit
    return sorted(running)


def remove_pidfiles(run_dir):
    """Remove the nodes' pid files once none runs: a stale one (a node
    killed by SIGKILL) would stop twistd if its pid were reused."""
    for port in node_ports(run_dir):
        try:
            os.unlink(pidfile(run_dir, port))
        except FileNotFoundError:
            pass


def signal_pid(pid, signum):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass                        # it just exited


def stop(args):
    stopped = stop_nodes(args.dir)
    if not stopped:
        print(f"rcluster-cluster: no cluster is running from {args.dir}")
        return 0
    print(f"rcluster-cluster: stopped {len(stopped)} nodes "
          f"(127.0.0.1:{describe_ports(stopped)})")
    return 0


def status(args):
    ports = node_ports(args.dir)
    running = running_nodes(args.dir)
    if not running:
        print(f"rcluster-cluster: no cluster is running from {args.dir}")
        return 1
    healthy = True
    for port in ports:
        if port not in running:
            print(f"127.0.0.1:{port} not running")
            healthy = False
            continue
        try:
            fields = cluster_info(port)
        except (OSError, ConnectionError, ReplyError) as err:
            print(f"127.0.0.1:{port} pid {running[port]} not answering ({err})")
            healthy = False
            continue
        healthy &= fields.get("cluster_state") == "ok"
        try:
            role = describe_role(port)
        except (OSError, ConnectionError, ReplyError) as err:
            role = f"role:? ({err})"
        print(f"127.0.0.1:{port} pid {running[port]} "
              f"cluster_state:{fields.get('cluster_state')} "
              f"known_nodes:{fields.get('cluster_known_nodes')} "
              f"slots_assigned:{fields.get('cluster_slots_assigned')} {role}")
    return 0 if healthy else 1


def describe_role(port) -> str:
    """'role:master' or 'role:replica of <port> link:up|down'."""
    fields = replication_fields(port)
    if fields.get("role") != "slave":
        return "role:master"
    return (f"role:replica of {fields.get('master_port', '?')} "
            f"link:{fields.get('master_link_status', '?')}")


def remove_node_files(run_dir):
    """Remove what start created (only that: the run directory is the
    user's choice, it may hold other things)."""
    for port in node_ports(run_dir):
        directory = node_dir(run_dir, port)
        for name in NODE_FILES:
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(directory)
        except OSError:
            print(f"rcluster-cluster: kept {directory} (it holds other files)")
    try:
        os.rmdir(run_dir)
    except OSError:
        pass


def clean(args):
    stop(args)
    remove_node_files(args.dir)
    print(f"rcluster-cluster: removed the nodes' files from {args.dir}")
    return 0


# -- reshard / rebalance ---------------------------------------------------------
#
# Both move slots with CLUSTER MIGRATESLOTS (atomic: no ASK, no TRYAGAIN)
# when every node involved is an rcluster node, and otherwise hand the job
# to ``redis-cli --cluster reshard|rebalance`` (SETSLOT + MIGRATE).

def masters_of(port) -> list:
    """[(name, host, port, [slots])] of the masters, from CLUSTER NODES."""
    text = call(port, "CLUSTER", "NODES")
    if isinstance(text, bytes):
        text = text.decode()
    out = []
    for line in text.splitlines():
        fields = line.split()
        if "master" not in fields[2].split(",") or "fail" in fields[2]:
            continue
        host, rest = fields[1].split("@")[0].rsplit(":", 1)
        slots = []
        for item in fields[8:]:
            if item.startswith("["):
                continue
            start, _, end = item.partition("-")
            slots.extend(range(int(start), int(end or start) + 1))
        out.append((fields[0], host or "127.0.0.1", int(rest), slots))
    return out


def supports_atomic(port) -> bool:
    try:
        reply = call(port, "COMMAND", "INFO", "cluster|migrateslots")
    except (OSError, ConnectionError, ReplyError):
        return False
    return bool(reply) and reply[0] is not None


def _ranges(slots):
    slots = sorted(slots)
    out = []
    for slot in slots:
        if out and out[-1][1] == slot - 1:
            out[-1][1] = slot
        else:
            out.append([slot, slot])
    return out


def _job_state(port, name):
    for entry in call(port, "CLUSTER", "GETSLOTMIGRATIONS"):
        fields = dict(zip(entry[::2], entry[1::2]))
        if fields.get(b"name", b"").decode() == name:
            return {k.decode(): v.decode() if isinstance(v, bytes) else v
                    for k, v in fields.items()}
    return None


def migrate_slots(source, target, slots, timeout=3600.0):
    """One atomic move with CLUSTER MIGRATESLOTS; waits for its end."""
    _, _, sport, _ = source
    # MIGRATESLOTS SLOTSRANGE s e s e ... NODE id: one SLOTSRANGE keyword.
    flat = ["CLUSTER", "MIGRATESLOTS", "SLOTSRANGE"]
    for start, end in _ranges(slots):
        flat += [str(start), str(end)]
    flat += ["NODE", target[0]]
    before = {e[1] for e in _exports(sport)}
    call(sport, *flat, timeout=30)
    names = [n for n in _exports(sport) if n[1] not in before]
    if not names:
        raise Failure("the source started no slot migration")
    name = names[-1][1]
    deadline = time.monotonic() + timeout
    while True:
        state = _job_state(sport, name)
        if state and state["state"] == "success":
            return state
        if state and state["state"] in ("failed", "canceled"):
            raise Failure(f"slot migration {name} {state['state']}: "
                          f"{state.get('message', '')}")
        if time.monotonic() > deadline:
            raise Failure(f"slot migration {name} still running after "
                          f"{timeout:.0f} s")
        time.sleep(0.1)


def _exports(port):
    out = []
    for entry in call(port, "CLUSTER", "GETSLOTMIGRATIONS"):
        fields = dict(zip(entry[::2], entry[1::2]))
        if fields.get(b"operation") == b"EXPORT":
            out.append((fields.get(b"state", b"").decode(),
                        fields[b"name"].decode()))
    return out


def _find(masters, name_or_port):
    for m in masters:
        if m[0] == name_or_port or str(m[2]) == str(name_or_port):
            return m
    raise Failure(f"no master {name_or_port}")


def _redis_cli(*args):
    result = subprocess.run(["redis-cli", "--cluster", *args])
    return result.returncode


def reshard(args):
    entry = args.port or args.base_port
    masters = masters_of(entry)
    if not args.source or not args.target or not args.slots:
        raise Failure("reshard needs --from, --to and --slots")
    source = _find(masters, args.source)
    target = _find(masters, args.target)
    if not all(supports_atomic(m[2]) for m in (source, target)):
        print("rcluster-cluster: an end is not an rcluster node: "
              "falling back to redis-cli --cluster reshard")
        return _redis_cli("reshard", f"127.0.0.1:{entry}", "--cluster-from",
                          source[0], "--cluster-to", target[0],
                          "--cluster-slots", str(args.slots), "--cluster-yes")
    slots = sorted(source[3])[:args.slots]
    t0 = time.monotonic()
    state = migrate_slots(source, target, slots)
    print(f"Moved {len(slots)} slots ({state['keys_sent']} keys) from "
          f"{source[2]} to {target[2]} in {time.monotonic() - t0:.2f} s "
          f"(atomic)")
    return 0


def rebalance_plan(masters) -> list:
    """[(source, target, slots)]: every master ends with 16384/n slots
    (+1 for the first ones), moving as few slots as possible."""
    n = len(masters)
    want = {m[0]: SLOTS // n + (1 if i < SLOTS % n else 0)
            for i, m in enumerate(sorted(masters, key=lambda m: m[0]))}
    donors = [[m, sorted(m[3])[want[m[0]]:]] for m in masters
              if len(m[3]) > want[m[0]]]
    takers = [[m, want[m[0]] - len(m[3])] for m in masters
              if len(m[3]) < want[m[0]]]
    plan = []
    for taker, need in takers:
        while need > 0 and donors:
            donor, extra = donors[0]
            take, donors[0][1] = extra[:need], extra[need:]
            plan.append((donor, taker, take))
            need -= len(take)
            if not donors[0][1]:
                donors.pop(0)
    return plan


def rebalance(args):
    entry = args.port or args.base_port
    masters = masters_of(entry)
    if not all(supports_atomic(m[2]) for m in masters):
        print("rcluster-cluster: not every master is an rcluster node: "
              "falling back to redis-cli --cluster rebalance")
        return _redis_cli("rebalance", f"127.0.0.1:{entry}",
                          "--cluster-use-empty-masters")
    plan = rebalance_plan(masters)
    if not plan:
        print("The cluster is balanced.")
        return 0
    for source, target, slots in plan:
        t0 = time.monotonic()
        state = migrate_slots(source, target, slots)
        print(f"Moved {len(slots)} slots ({state['keys_sent']} keys) from "
              f"{source[2]} to {target[2]} in {time.monotonic() - t0:.2f} s "
              f"(atomic)")
    return 0


ACTIONS = {"start": start, "stop": stop, "status": status, "clean": clean,
           "reshard": reshard, "rebalance": rebalance}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="rcluster-cluster", description=__doc__.split("\n")[0].strip("`"))
    parser.add_argument("action", choices=tuple(ACTIONS))
    parser.add_argument("--nodes", type=int, default=3,
                        help="number of masters (default 3)")
    parser.add_argument("--replicas", type=int, default=1,
                        help="replicas per master (default 1)")
    parser.add_argument("--base-port", type=int, default=30001,
                        help="port of the first node (default 30001)")
    parser.add_argument("--node-timeout", type=int, default=5000,
                        help="cluster-node-timeout in ms (default 5000)")
    parser.add_argument("--dir", default=os.path.join("run", "cluster"),
                        help="run directory (default ./run/cluster)")
    parser.add_argument("--port", type=int, default=None,
                        help="reshard/rebalance: a node of the cluster "
                        "(default the base port)")
    parser.add_argument("--from", dest="source", default=None,
                        help="reshard: the source master (id or port)")
    parser.add_argument("--to", dest="target", default=None,
                        help="reshard: the target master (id or port)")
    parser.add_argument("--slots", type=int, default=0,
                        help="reshard: how many slots to move")
    args = parser.parse_args(argv)
    args.dir = os.path.abspath(args.dir)
    if not 1 <= args.nodes <= 100:
        parser.error("--nodes must be between 1 and 100")
    if not 0 <= args.replicas <= 10:
        parser.error("--replicas must be between 0 and 10")
    total = args.nodes * (1 + args.replicas)
    if not 1 <= args.base_port <= 65535 - BUS_PORT_OFFSET - total + 1:
        parser.error(f"--base-port must leave room for the bus ports "
                     f"(at most {65535 - BUS_PORT_OFFSET - total + 1})")
    try:
        return ACTIONS[args.action](args) or 0
    except Failure as err:
        print(f"rcluster-cluster: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rcluster-cluster: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

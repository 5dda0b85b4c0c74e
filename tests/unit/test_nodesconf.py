"""nodes.conf: the CLUSTER NODES line format, loading, locking, saving."""
from __future__ import annotations

import os
import tempfile

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import TestCase

from rcluster.cluster import nodesconf
from rcluster.cluster.messages import (NODE_FAIL, NODE_HANDSHAKE, NODE_MASTER,
                                       NODE_PFAIL, NODE_SLAVE)
from rcluster.cluster.nodesconf import ConfigFile, NodesConfError
from tests.unit.test_cluster_state import START, make_state

ME = "e602a974c82dd4cbec05155beace62f0647c5e67"
M2 = "00d27c84eb63e67011b37a2f8a3e39605454b246"
R1 = "42f3daa7dfee80fe947a62fd76c2fb27db402a1f"
HS = "d1aebfed2bbaeb6559d8564c7e19263adb7d873d"

# What Redis 7.0 writes for such a cluster (one line per node, then vars).
SAMPLE = (
    f"{ME} 127.0.0.1:7000@17000 myself,master - 0 0 3 connected 0-99 200 "
    f"[300->-{M2}] [301-<-{M2}]\n"
    f"{M2} 127.0.0.1:7001@17001,m2.example master - 0 {START} 5 connected "
    "100-199 16383\n"
    f"{R1} 127.0.0.1:7002@17002 slave,fail {M2} {START} {START} 5 "
    "disconnected\n"
    "vars currentEpoch 6 lastVoteEpoch 4\n"
)


def sample_state():
    """The cluster of SAMPLE, built by hand."""
    state = make_state(7000)
    state.rename_node(state.myself, ME)
    me = state.myself
    me.ip, me.config_epoch = "127.0.0.1", 3
    m2 = state.create_node(M2, NODE_MASTER)
    m2.ip, m2.port, m2.cport, m2.hostname = "127.0.0.1", 7001, 17001, "m2.example"
    m2.config_epoch, m2.pong_received = 5, START
    state.add_node(m2)
    r1 = state.create_node(R1, NODE_SLAVE | NODE_FAIL)
    r1.ip, r1.port, r1.cport = "127.0.0.1", 7002, 17002
    r1.ping_sent = r1.pong_received = START
    r1.replicaof = m2
    m2.add_replica(r1)
    state.add_node(r1)
    hs = state.create_node(HS, NODE_HANDSHAKE)
    state.add_node(hs)
    for slot in list(range(100)) + [200]:
        state.add_slot(me, slot)
    for slot in list(range(100, 200)) + [16383]:
        state.add_slot(m2, slot)
    state.migrating[300] = m2
    state.importing[301] = m2
    m2.link = object()          # connected
    state.current_epoch, state.last_vote_epoch = 6, 4
    return state


class RenderTests(TestCase):
    def test_nodes_conf_content(self):
        self.assertEqual(nodesconf.render(sample_state()), SAMPLE)

    def test_cluster_nodes_includes_handshakes(self):
        text = nodesconf.describe_nodes(sample_state())
        self.assertEqual(text.splitlines()[3],
                         f"{HS} :0@0 handshake - 0 0 0 disconnected")
        self.assertTrue(text.endswith("\n"))
        self.assertNotIn("vars", text)

    def test_flags_column(self):
        state = make_state()
        node = state.create_node(M2, 0)
        state.add_node(node)
        self.assertIn(" noflags ", nodesconf.describe_node(state, node))
        node.flags = NODE_MASTER | NODE_PFAIL
        self.assertIn(" master,fail? ", nodesconf.describe_node(state, node))

    def test_plaintext_port_for_tls_clusters(self):
        state = make_state()
        me = state.myself
        me.port, me.pport = 7443, 7000
        self.assertIn(":7443@", nodesconf.describe_node(state, me))
        self.assertIn(":7000@", nodesconf.describe_node(state, me, use_pport=True))


class LoadTests(TestCase):
    def load(self, text):
        state = make_state(7000)
        state.nodes.clear()
        state.myself = None
        nodesconf.load(state, text, "/data/nodes.conf")
        return state

    def test_round_trip(self):
        state = self.load(SAMPLE)
        self.assertEqual(state.myself.name, ME)
        self.assertEqual((state.current_epoch, state.last_vote_epoch), (6, 4))
        self.assertEqual(state.myself.numslots, 101)
        m2, r1 = state.nodes[M2], state.nodes[R1]
        self.assertEqual((m2.config_epoch, m2.hostname, m2.port, m2.cport),
                         (5, "m2.example", 7001, 17001))
        self.assertIs(r1.replicaof, m2)
        self.assertEqual(m2.replicas, [r1])
        self.assertEqual(r1.config_epoch, 0)     # a replica has none
        self.assertEqual(r1.fail_time, START)
        self.assertIs(state.migrating_to(300), m2)
        self.assertIs(state.importing_from(301), m2)
        self.assertIs(state.slot_owner(16383), m2)
        # Times become "now" when set; links start disconnected.
        expected = SAMPLE.replace(f"0 {START} 5 connected", f"0 {START} 5 disconnected")
        self.assertEqual(nodesconf.render(state), expected)

    def test_old_format_and_ipv6(self):
        state = self.load(f"{ME} ::1:7000 myself,master - 0 0 0 connected\n")
        me = state.myself
        self.assertEqual((me.ip, me.port, me.cport), ("::1", 7000, 17000))
        self.assertEqual(state.current_epoch, 0)

    def test_current_epoch_is_never_behind(self):
        state = self.load(f"{ME} :7000@17000 myself,master - 0 0 9 connected\n"
                          "vars currentEpoch 2 lastVoteEpoch 0\n")
        self.assertEqual(state.current_epoch, 9)

    def test_blank_lines_and_padding_are_skipped(self):
        state = self.load("\n" + SAMPLE + "\n\n\n")
        self.assertEqual(len(state.nodes), 3)

    def test_corrupt_files_are_refused(self):
        good = f"{ME} 127.0.0.1:7000@17000 myself,master - 0 0 1 connected"
        cases = {
            "eight fields": f"{ME} 127.0.0.1:7000@17000 myself,master - 0 0 1",
            "bad name": good.replace(ME, "xyz"),
            "bad flag": good.replace("myself,master", "myself,boss"),
            "no port": good.replace("127.0.0.1:7000@17000", "localhost"),
            "bad port": good.replace(":7000@", ":70a0@"),
            "bad epoch": good.replace(" 1 connected", " -1 connected"),
            "slot range": good + " 0-16384",
            "bad slot": good + " x",
            "open slot": good + f" [5->{M2}]",
            "vars": good + "\nvars currentEpoch",
            "no myself": good.replace("myself,", ""),
            "two myselves": good + "\n" + good.replace(ME, M2),
            "quotes": good + ' "unbalanced',
        }
        for what, text in cases.items():
            with self.assertRaises(NodesConfError, msg=what) as caught:
                self.load(text + "\n")
            self.assertTrue(str(caught.exception).startswith(
                'Unrecoverable error: corrupted cluster config file '
                '"/data/nodes.conf".'), what)


class ConfigFileTests(TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "nodes.conf")
        self.addCleanup(lambda: __import__("shutil").rmtree(self.dir))

    def open(self):
        config = ConfigFile(self.path)
        config.lock()
        self.addCleanup(config.close)
        return config

    def test_lock_creates_an_empty_file(self):
        config = self.open()
        self.assertTrue(os.path.exists(self.path))
        self.assertIsNone(config.read())

    def test_second_node_refused(self):
        self.open()
        other = ConfigFile(self.path)
        with self.assertRaises(NodesConfError) as caught:
            other.lock()
        self.assertEqual(str(caught.exception),
                         f"Sorry, the cluster configuration file {self.path} "
                         "is already used by a different Redis Cluster node. "
                         "Please make sure that different nodes use different "
                         "cluster configuration files.")

    def test_save_rewrites_in_place_and_keeps_the_lock(self):
        config = self.open()
        config.save("a" * 100 + "\n")
        config.save("short\n", fsync=False)
        with open(self.path) as fh:
            self.assertEqual(fh.read(), "short\n")   # padding truncated
        self.assertEqual(config.read(), "short\n")
        self.assertRaises(NodesConfError, ConfigFile(self.path).lock)
        config.close()
        ConfigFile(self.path).lock()                 # released at exit

    def test_missing_file(self):
        self.assertIsNone(ConfigFile(self.path).read())


class ServiceStartupTests(TestCase):
    """ClusterService locks and loads nodes.conf before anything else."""

    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "nodes.conf")
        self.addCleanup(lambda: __import__("shutil").rmtree(self.dir))

    def service(self):
        from rcluster.cluster.service import ClusterService
        from rcluster.config import Settings
        from rcluster.server import Server
        settings = Settings()
        for name, value in (("cluster-enabled", "yes"), ("port", "7000"),
                            ("cluster-config-file", self.path)):
            settings.apply(name, [value])
        reactor = MemoryReactorClock()
        reactor.advance(START / 1000)
        service = ClusterService(Server(settings, reactor), settings, reactor)
        self.addCleanup(service.config_file.close)
        return service

    def fails(self) -> str:
        """The message the node exits with (SystemExit prints it on
        stderr and exits with status 1)."""
        with self.assertRaises(SystemExit) as caught:
            self.service()
        self.assertIsInstance(caught.exception.code, str)
        return caught.exception.code

    def test_new_node_saves_its_identity(self):
        service = self.service()
        name = service.state.myself.name
        with open(self.path) as fh:
            self.assertEqual(fh.read(), f"{name} :7000@17000 myself,master - "
                             "0 0 0 connected\nvars currentEpoch 0 "
                             "lastVoteEpoch 0\n")
        self.assertIs(service.server.cluster, service.state)

    def test_restart_keeps_name_epochs_and_slots(self):
        with open(self.path, "w") as fh:
            fh.write(SAMPLE)
        state = self.service().state
        self.assertEqual(state.myself.name, ME)
        self.assertEqual((state.current_epoch, state.myself.config_epoch), (6, 3))
        self.assertEqual(state.myself.numslots, 101)
        self.assertEqual(len(state.nodes), 3)

    def test_corrupt_file_stops_the_node(self):
        with open(self.path, "w") as fh:
            fh.write("garbage\n")
        self.assertTrue(self.fails().startswith(
            'Unrecoverable error: corrupted cluster config file '
            f'"{self.path}".'))
        with open(self.path) as fh:
            self.assertEqual(fh.read(), "garbage\n")   # never reset

    def test_file_in_use_stops_the_node(self):
        self.service()
        self.assertIn("is already used by a different Redis Cluster node",
                      self.fails())

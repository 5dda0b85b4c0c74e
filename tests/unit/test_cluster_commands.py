"""CLUSTER subcommands, ASKING, READONLY, READWRITE: replies and errors,
byte for byte (texts checked against redis-server 7.0.15)."""
from __future__ import annotations

import os
import shutil
import tempfile

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import TestCase

from rcluster.cluster.messages import (NODE_FAIL, NODE_MASTER, NODE_PFAIL,
                                       NODE_SLAVE)
from rcluster.cluster.service import ClusterService
from rcluster.config import Settings
from rcluster.server import Server
from tests.protocol.helpers import connect, exchange, make_server
from tests.unit.test_cluster_state import START

OTHER = "00d27c84eb63e67011b37a2f8a3e39605454b246"
REPLICA = "42f3daa7dfee80fe947a62fd76c2fb27db402a1f"


def bulk(text) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return b"$%d\r\n%s\r\n" % (len(data), data)


def command(*args) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(bulk(arg))
    return b"".join(parts)


class ClusterCommandTests(TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        settings = Settings()
        for name, value in (("cluster-enabled", "yes"), ("port", "7000"),
                            ("cluster-node-timeout", "1000"),
                            ("cluster-config-file",
                             os.path.join(self.dir, "nodes.conf"))):
            settings.apply(name, [value])
        self.reactor = MemoryReactorClock()
        self.reactor.advance(START / 1000)
        self.server = Server(settings, self.reactor)
        self.service = ClusterService(self.server, settings, self.reactor)
        self.addCleanup(self.service.config_file.close)
        self.state = self.service.state
        self.me = self.state.myself
        self.proto, self.transport = connect(self.server)

    def call(self, *args) -> bytes:
        return exchange(self.proto, self.transport, command(*args))

    def add_node(self, name=OTHER, flags=NODE_MASTER, port=7001):
        node = self.state.create_node(name, flags)
        node.ip, node.port, node.cport = "127.0.0.1", port, port + 10000
        self.state.add_node(node)
        return node

    def saved(self) -> str:
        with open(self.service.config_file.path) as fh:
            return fh.read()

    # -- identity -----------------------------------------------------------
    def test_myid_and_myshardid(self):
        self.assertEqual(self.call("CLUSTER", "MYID"), bulk(self.me.name))
        self.assertEqual(self.call("cluster", "myshardid"), bulk(self.me.name))
        master = self.add_node()
        self.state.set_master(master)
        self.assertEqual(self.call("CLUSTER", "MYSHARDID"), bulk(OTHER))

    def test_help(self):
        reply = self.call("CLUSTER", "HELP")
        self.assertTrue(reply.startswith(
            b"*56\r\n+CLUSTER <subcommand> [<arg> [value] [opt] ...]. "
            b"Subcommands are:\r\n+ADDSLOTS <slot> [<slot> ...]\r\n"))
        self.assertTrue(reply.endswith(b"+HELP\r\n+    Prints this help.\r\n"))

    def test_unknown_subcommand_and_arity(self):
        self.assertEqual(self.call("CLUSTER", "foo"),
                         b"-ERR unknown subcommand 'foo'. Try CLUSTER HELP.\r\n")
        self.assertEqual(self.call("CLUSTER", "MEET", "1.2.3.4"),
                         b"-ERR wrong number of arguments for 'cluster|meet' "
                         b"command\r\n")
        self.assertEqual(self.call("CLUSTER", "reset", "a", "b"),
                         b"-ERR unknown subcommand or wrong number of arguments "
                         b"for 'reset'. Try CLUSTER HELP.\r\n")
        self.assertEqual(self.call("CLUSTER", "nodes", "x"),
                         b"-ERR wrong number of arguments for 'cluster|nodes' "
                         b"command\r\n")

    def test_cluster_disabled(self):
        server, _ = make_server()
        proto, transport = connect(server)
        for args in (("CLUSTER", "INFO"), ("CLUSTER", "KEYSLOT", "a"),
                     ("ASKING",), ("READONLY",), ("READWRITE",)):
            self.assertEqual(exchange(proto, transport, command(*args)),
                             b"-ERR This instance has cluster support "
                             b"disabled\r\n")

    # -- MEET / FORGET / RESET ------------------------------------------------
    def test_meet(self):
        self.assertEqual(self.call("CLUSTER", "MEET", "127.0.0.1", "7001"),
                         b"+OK\r\n")
        (node,) = [n for n in self.state.nodes.values() if n is not self.me]
        self.assertEqual((node.ip, node.port, node.cport), ("127.0.0.1", 7001, 17001))
        self.assertTrue(node.in_handshake)
        self.assertEqual(self.call("CLUSTER", "MEET", "127.0.0.1", "7002", "7500"),
                         b"+OK\r\n")
        self.assertIn(7500, [n.cport for n in self.state.nodes.values()])
        # A handshake already going on: still OK.
        self.assertEqual(self.call("CLUSTER", "MEET", "127.0.0.1", "7001"),
                         b"+OK\r\n")
        self.assertEqual(len(self.state.nodes), 3)

    def test_meet_errors(self):
        self.assertEqual(self.call("CLUSTER", "MEET", "x", "1"),
                         b"-ERR Invalid node address specified: x:1\r\n")
        self.assertEqual(self.call("CLUSTER", "MEET", "1.2.3.4", "x"),
                         b"-ERR Invalid TCP base port specified: x\r\n")
        self.assertEqual(self.call("CLUSTER", "MEET", "1.2.3.4", "1", "y"),
                         b"-ERR Invalid TCP bus port specified: y\r\n")
        self.assertEqual(self.call("CLUSTER", "MEET", "1.2.3.4", "0"),
                         b"-ERR Invalid node address specified: 1.2.3.4:0\r\n")
        self.assertEqual(self.call("CLUSTER", "MEET", "1.2.3.4", "1", "2", "3"),
                         b"-ERR unknown subcommand or wrong number of arguments "
                         b"for 'MEET'. Try CLUSTER HELP.\r\n")

    def test_forget(self):
        node = self.add_node()
        self.assertEqual(self.call("CLUSTER", "FORGET", OTHER), b"+OK\r\n")
        self.assertNotIn(OTHER, self.state.nodes)
        self.assertTrue(self.state.blacklisted(OTHER))
        self.assertNotIn(OTHER, self.saved())
        self.assertEqual(self.call("CLUSTER", "FORGET", OTHER),
                         b"-ERR Unknown node %s\r\n" % OTHER.encode())
        self.assertEqual(self.call("CLUSTER", "FORGET", self.me.name),
                         b"-ERR I tried hard but I can't forget myself...\r\n")
        node = self.add_node(REPLICA)
        self.state.set_master(node)
        self.assertEqual(self.call("CLUSTER", "FORGET", REPLICA),
                         b"-ERR Can't forget my master!\r\n")

    def test_reset(self):
        self.add_node()
        self.call("CLUSTER", "ADDSLOTS", "1")
        name = self.me.name
        self.assertEqual(self.call("CLUSTER", "RESET"), b"+OK\r\n")
        self.assertEqual((list(self.state.nodes), self.me.numslots), ([name], 0))
        self.assertEqual(self.call("CLUSTER", "RESET", "HARD"), b"+OK\r\n")
        self.assertNotEqual(self.me.name, name)
        self.assertIn(self.me.name, self.saved())
        self.assertEqual(self.call("CLUSTER", "RESET", "maybe"),
                         b"-ERR syntax error\r\n")
        self.server.keyspace.set(b"k", b"v")
        self.assertEqual(self.call("CLUSTER", "RESET"),
                         b"-ERR CLUSTER RESET can't be called with master "
                         b"nodes containing keys\r\n")

    # -- slots ----------------------------------------------------------------
    def test_addslots_and_delslots(self):
        self.assertEqual(self.call("CLUSTER", "ADDSLOTS", "0", "5", "16383"),
                         b"+OK\r\n")
        self.assertEqual(self.me.slots, [0, 5, 16383])
        self.assertIn("myself,master - 0 0 0 connected 0 5 16383\n", self.saved())
        self.assertEqual(self.call("CLUSTER", "ADDSLOTS", "1", "5"),
                         b"-ERR Slot 5 is already busy\r\n")
        self.assertEqual(self.call("CLUSTER", "ADDSLOTS", "1", "1"),
                         b"-ERR Slot 1 specified multiple times\r\n")
        self.assertEqual(self.call("CLUSTER", "ADDSLOTS", "1", "16384"),
                         b"-ERR Invalid or out of range slot\r\n")
        self.assertEqual(self.call("CLUSTER", "ADDSLOTS", "-1"),
                         b"-ERR Invalid or out of range slot\r\n")
        self.assertEqual(self.me.slots, [0, 5, 16383])   # errors change nothing
        self.assertEqual(self.call("CLUSTER", "DELSLOTS", "5", "7"),
                         b"-ERR Slot 7 is already unassigned\r\n")
        self.assertEqual(self.call("CLUSTER", "DELSLOTS", "5"), b"+OK\r\n")
        self.assertEqual(self.me.slots, [0, 16383])

    def test_slot_ranges(self):
        self.assertEqual(self.call("CLUSTER", "ADDSLOTSRANGE", "0", "99",
                                   "200", "200"), b"+OK\r\n")
        self.assertEqual(self.me.numslots, 101)
        self.assertEqual(self.call("CLUSTER", "ADDSLOTSRANGE", "10", "5"),
                         b"-ERR start slot number 10 is greater than end slot "
                         b"number 5\r\n")
        self.assertEqual(self.call("CLUSTER", "ADDSLOTSRANGE", "300", "310",
                                   "305", "320"),
                         b"-ERR Slot 305 specified multiple times\r\n")
        self.assertEqual(self.call("CLUSTER", "ADDSLOTSRANGE", "1", "2", "3"),
                         b"-ERR wrong number of arguments for "
                         b"'cluster|addslotsrange' command\r\n")
        self.assertEqual(self.call("CLUSTER", "DELSLOTSRANGE", "0", "49"),
                         b"+OK\r\n")
        self.assertEqual(self.me.slots[:2], [50, 51])
        self.assertEqual(self.call("CLUSTER", "DELSLOTSRANGE", "0", "50"),
                         b"-ERR Slot 0 is already unassigned\r\n")

    def test_addslots_clears_importing(self):
        self.state.importing[7] = self.add_node()
        self.call("CLUSTER", "ADDSLOTS", "7")
        self.assertEqual(self.state.importing, {})

    def test_flushslots(self):
        self.call("CLUSTER", "ADDSLOTSRANGE", "0", "10")
        self.server.keyspace.set(b"k", b"v")
        self.assertEqual(self.call("CLUSTER", "FLUSHSLOTS"),
                         b"-ERR DB must be empty to perform CLUSTER FLUSHSLOTS.\r\n")
        self.server.keyspace.delete(b"k")
        self.assertEqual(self.call("CLUSTER", "FLUSHSLOTS"), b"+OK\r\n")
        self.assertEqual(self.me.numslots, 0)

    def test_setslot(self):
        other = self.add_node()
        replica = self.add_node(REPLICA, NODE_SLAVE, 7002)
        self.call("CLUSTER", "ADDSLOTS", "1")
        self.assertEqual(self.call("CLUSTER", "SETSLOT", "1", "MIGRATING", OTHER),
                         b"+OK\r\n")
        self.assertIs(self.state.migrating_to(1), other)
        self.assertIn(f" [1->-{OTHER}]", self.saved())
        self.assertEqual(self.call("CLUSTER", "SETSLOT", "2", "MIGRATING", OTHER),
                         b"-ERR I'm not the owner of hash slot 2\r\n")
        self.assertEqual(self.call("CLUSTER", "SETSLOT", "2", "IMPORTING", OTHER),
                         b"+OK\r\n")
        self.assertIs(self.state.importing_from(2), other)
        self.assertEqual(self.call("CLUSTER", "SETSLOT", "1", "IMPORTING", OTHER),
                         b"-ERR I'm already the owner of hash slot 1\r\n")
        self.assertEqual(self.call("CLUSTER", "SETSLOT", "2", "IMPORTING", "nope"),
                         b"-ERR I don't know about node nope\r\n")
        self.assertEqual(self.call("CLUSTER", "SETSLOT", "2", "IMPORTING", REPLICA),
                         b"-ERR Target node is not a master\r\n")
        self.assertEqual(self.call("CLUSTER", "SETSLOT", "1", "STABLE"), b"+OK\r\n")
        self.assertIsNone(self.state.migrating_to(1))
        self.assertEqual(self.call("CLUSTER", "SETSLOT", "1", "NODE", "nope"),
                         b"-ERR Unknown node nope\r\n")
        self.assertEqual(self.call("CLUSTER", "SETSLOT", "1", "migrating"),
                         b"-ERR Invalid CLUSTER SETSLOT action or number of "
                         b"arguments. Try CLUSTER HELP\r\n")
        self.assertEqual(self.call("CLUSTER", "SETSLOT", "x", "STABLE"),
                         b"-ERR Invalid or out of range slot\r\n")
        self.assertIsNotNone(replica)

    def test_setslot_node_closes_an_import(self):
        other = self.add_node()
        other.config_epoch = 4
        self.state.current_epoch = 4
        self.state.add_slot(other, 9)
        self.call("CLUSTER", "SETSLOT", "9", "IMPORTING", OTHER)
        self.assertEqual(self.call("CLUSTER", "SETSLOT", "9", "NODE",
                                   self.me.name), b"+OK\r\n")
        self.assertIs(self.state.slot_owner(9), self.me)
        self.assertEqual(self.state.importing, {})
        # Our claim must win: a new epoch, taken without consensus.
        self.assertEqual((self.me.config_epoch, self.state.current_epoch), (5, 5))

    def test_setslot_node_refuses_to_give_away_keys(self):
        other = self.add_node()
        self.call("CLUSTER", "ADDSLOTS", "7629")      # keyslot("k")
        self.server.keyspace.set(b"k", b"v")
        self.assertEqual(self.call("CLUSTER", "SETSLOT", "7629", "NODE", OTHER),
                         b"-ERR Can't assign hashslot 7629 to a different "
                         b"node while I still hold keys for this hash slot.\r\n")
        self.server.keyspace.delete(b"k")
        self.call("CLUSTER", "ADDSLOTS", "1")
        self.assertEqual(self.call("CLUSTER", "SETSLOT", "7629", "NODE", OTHER),
                         b"+OK\r\n")
        self.assertIs(self.state.slot_owner(7629), other)
        self.assertTrue(self.me.is_master)
        # Giving away the last slot makes us a replica of the taker.
        self.call("CLUSTER", "SETSLOT", "1", "NODE", OTHER)
        self.assertIs(self.me.replicaof, other)
        self.assertEqual(self.call("CLUSTER", "SETSLOT", "1", "STABLE"),
                         b"-ERR Please use SETSLOT only with masters.\r\n")

    # -- epochs ----------------------------------------------------------------
    def test_bumpepoch(self):
        self.assertEqual(self.call("CLUSTER", "BUMPEPOCH"), b"+BUMPED 1\r\n")
        self.assertEqual(self.call("CLUSTER", "BUMPEPOCH"), b"+STILL 1\r\n")
        self.assertIn("vars currentEpoch 1 ", self.saved())

    def test_set_config_epoch(self):
        self.assertEqual(self.call("CLUSTER", "SET-CONFIG-EPOCH", "-1"),
                         b"-ERR Invalid config epoch specified: -1\r\n")
        self.assertEqual(self.call("CLUSTER", "SET-CONFIG-EPOCH", "x"),
                         b"-ERR value is not an integer or out of range\r\n")
        self.assertEqual(self.call("CLUSTER", "SET-CONFIG-EPOCH", "5"), b"+OK\r\n")
        self.assertEqual((self.me.config_epoch, self.state.current_epoch), (5, 5))
        self.assertEqual(self.call("CLUSTER", "SET-CONFIG-EPOCH", "6"),
                         b"-ERR Node config epoch is already non-zero\r\n")
        self.add_node()
        self.assertEqual(self.call("CLUSTER", "SET-CONFIG-EPOCH", "6"),
                         b"-ERR The user can assign a config epoch only when "
                         b"the node does not know any other node.\r\n")

    def test_saveconfig(self):
        os.unlink(self.service.config_file.path)
        self.assertEqual(self.call("CLUSTER", "SAVECONFIG"), b"+OK\r\n")
        self.assertIn(self.me.name, self.saved())
        shutil.rmtree(self.dir)
        self.assertEqual(self.call("CLUSTER", "SAVECONFIG"),
                         b"-ERR error saving the cluster node config: No such "
                         b"file or directory\r\n")
        os.mkdir(self.dir)

    # -- keys ------------------------------------------------------------------
    def test_keyslot_and_keys_in_slot(self):
        self.assertEqual(self.call("CLUSTER", "KEYSLOT", "foo"), b":12182\r\n")
        self.assertEqual(self.call("CLUSTER", "KEYSLOT", "{user1}.x"),
                         self.call("CLUSTER", "KEYSLOT", "user1"))
        for key in (b"{t}a", b"{t}b", b"{t}c"):
            self.server.keyspace.set(key, b"v")
        slot = b"%d" % 15891                    # keyslot("t")
        self.assertEqual(self.call("CLUSTER", "COUNTKEYSINSLOT", slot), b":3\r\n")
        self.assertEqual(self.call("CLUSTER", "GETKEYSINSLOT", slot, "2"),
                         b"*2\r\n" + bulk("{t}a") + bulk("{t}b"))
        self.assertEqual(self.call("CLUSTER", "GETKEYSINSLOT", slot, "0"),
                         b"*0\r\n")
        self.assertEqual(self.call("CLUSTER", "COUNTKEYSINSLOT", "16384"),
                         b"-ERR Invalid slot\r\n")
        self.assertEqual(self.call("CLUSTER", "COUNTKEYSINSLOT", "x"),
                         b"-ERR value is not an integer or out of range\r\n")
        self.assertEqual(self.call("CLUSTER", "GETKEYSINSLOT", "1", "-1"),
                         b"-ERR Invalid slot or number of keys\r\n")

    # -- views ---------------------------------------------------------------
    def test_nodes(self):
        self.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        text = (f"{self.me.name} :7000@17000 myself,master - 0 0 0 connected "
                "0-16383\n")
        self.assertEqual(self.call("CLUSTER", "NODES"), bulk(text))
        self.proto.dataReceived(b"HELLO 3\r\n")
        self.assertEqual(self.call("CLUSTER", "NODES"),
                         b"=%d\r\ntxt:%s\r\n" % (len(text) + 4, text.encode()))

    def test_info(self):
        self.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        self.assertEqual(self.call("CLUSTER", "INFO"), bulk(
            "cluster_state:fail\r\ncluster_slots_assigned:16384\r\n"
            "cluster_slots_ok:16384\r\ncluster_slots_pfail:0\r\n"
            "cluster_slots_fail:0\r\ncluster_known_nodes:1\r\n"
            "cluster_size:1\r\ncluster_current_epoch:0\r\n"
            "cluster_my_epoch:0\r\ncluster_stats_messages_sent:0\r\n"
            "cluster_stats_messages_received:0\r\n"
            "total_cluster_links_buffer_limit_exceeded:0\r\n"))
        other = self.add_node()
        self.call("CLUSTER", "DELSLOTSRANGE", "0", "9")
        for slot in range(10):
            self.state.add_slot(other, slot)
        self.state.stats_sent[1] = 3
        self.state.stats_received[0] = 2
        self.reactor.advance(3)
        self.state.update_state()
        other.flags |= NODE_PFAIL
        info = self.call("CLUSTER", "INFO").decode()
        for line in ("cluster_state:ok", "cluster_slots_ok:16374",
                     "cluster_slots_pfail:10", "cluster_known_nodes:2",
                     "cluster_size:2", "cluster_stats_messages_pong_sent:3",
                     "cluster_stats_messages_sent:3",
                     "cluster_stats_messages_ping_received:2",
                     "cluster_stats_messages_received:2"):
            self.assertIn(line + "\r\n", info)

    def test_slots(self):
        self.me.ip = "127.0.0.1"
        self.call("CLUSTER", "ADDSLOTSRANGE", "0", "99")
        other = self.add_node()
        other.hostname = "b.example"
        for slot in range(100, 16384):
            self.state.add_slot(other, slot)
        replica = self.add_node(REPLICA, NODE_SLAVE, 7002)
        replica.replicaof = other
        other.add_replica(replica)
        node = lambda ip, port, name: (bulk(ip) + b":%d\r\n" % port + bulk(name))
        # The replica has no replication offset yet: not listed.
        expected = (b"*2\r\n*3\r\n:0\r\n:99\r\n*4\r\n"
                    + node("127.0.0.1", 7000, self.me.name) + b"*0\r\n"
                    + b"*3\r\n:100\r\n:16383\r\n*4\r\n"
                    + node("127.0.0.1", 7001, OTHER)
                    + b"*2\r\n" + bulk("hostname") + bulk("b.example"))
        self.assertEqual(self.call("CLUSTER", "SLOTS"), expected)
        replica.repl_offset = 10
        reply = self.call("CLUSTER", "SLOTS")
        self.assertIn(b"*4\r\n:100\r\n:16383\r\n", reply)
        self.assertTrue(reply.endswith(node("127.0.0.1", 7002, REPLICA) + b"*0\r\n"))

    def test_shards(self):
        self.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        self.assertEqual(self.call("CLUSTER", "SHARDS"), (
            b"*1\r\n*4\r\n" + bulk("slots") + b"*2\r\n:0\r\n:16383\r\n"
            + bulk("nodes") + b"*1\r\n*14\r\n" + bulk("id") + bulk(self.me.name)
            + bulk("port") + b":7000\r\n" + bulk("ip") + bulk("")
            + bulk("endpoint") + bulk("") + bulk("role") + bulk("master")
            + bulk("replication-offset") + b":0\r\n" + bulk("health")
            + bulk("online")))
        failed = self.add_node()
        failed.flags |= NODE_FAIL
        self.assertIn(bulk("health") + bulk("fail"), self.call("CLUSTER", "SHARDS"))

    def test_replicas_and_failure_reports(self):
        master = self.add_node()
        replica = self.add_node(REPLICA, NODE_SLAVE, 7002)
        replica.replicaof = master
        master.add_replica(replica)
        line = f"{REPLICA} 127.0.0.1:7002@17002 slave {OTHER} 0 0 0 disconnected"
        for name in ("REPLICAS", "SLAVES"):
            self.assertEqual(self.call("CLUSTER", name, OTHER),
                             b"*1\r\n" + bulk(line))
        self.assertEqual(self.call("CLUSTER", "REPLICAS", REPLICA),
                         b"-ERR The specified node is not a master\r\n")
        self.assertEqual(self.call("CLUSTER", "REPLICAS", "x"),
                         b"-ERR Unknown node x\r\n")
        self.assertEqual(self.call("CLUSTER", "COUNT-FAILURE-REPORTS", OTHER),
                         b":0\r\n")
        master.add_failure_report(replica, self.state.now())
        self.assertEqual(self.call("CLUSTER", "COUNT-FAILURE-REPORTS", OTHER),
                         b":1\r\n")

    def test_links(self):
        self.assertEqual(self.call("CLUSTER", "LINKS"), b"*0\r\n")
        other = self.add_node()
        link = self.server.cluster_engine.connect(other)
        link.attach(lambda data: None, lambda: None)
        reply = self.call("CLUSTER", "LINKS")
        self.assertEqual(reply, b"*1\r\n*12\r\n" + bulk("direction") + bulk("to")
                         + bulk("node") + bulk(OTHER) + bulk("create-time")
                         + b":%d\r\n" % START + bulk("events") + bulk("r")
                         + bulk("send-buffer-allocated") + b":0\r\n"
                         + bulk("send-buffer-used") + b":0\r\n")

    # -- replication hooks ------------------------------------------------------
    def test_replicate(self):
        master = self.add_node()
        self.assertEqual(self.call("CLUSTER", "REPLICATE", self.me.name),
                         b"-ERR Can't replicate myself\r\n")
        self.assertEqual(self.call("CLUSTER", "REPLICATE", "x"),
                         b"-ERR Unknown node x\r\n")
        self.call("CLUSTER", "ADDSLOTS", "1")
        self.assertEqual(self.call("CLUSTER", "REPLICATE", OTHER),
                         b"-ERR To set a master the node must be empty and "
                         b"without assigned slots.\r\n")
        self.call("CLUSTER", "DELSLOTS", "1")
        # No replication service attached: a clear error, nothing changed.
        self.assertEqual(self.call("CLUSTER", "REPLICATE", OTHER),
                         b"-ERR CLUSTER REPLICATE needs the replication "
                         b"service, which this node runs without\r\n")
        self.assertTrue(self.me.is_master)
        seen = []
        self.service.host.on_replicate = seen.append
        self.assertEqual(self.call("CLUSTER", "REPLICATE", OTHER), b"+OK\r\n")
        self.assertEqual((self.me.replicaof, seen), (master, [master]))
        self.assertIn(f"myself,slave {OTHER} ", self.saved())

    def test_failover_preconditions(self):
        self.assertEqual(self.call("CLUSTER", "FAILOVER"),
                         b"-ERR You should send CLUSTER FAILOVER to a replica\r\n")
        self.assertEqual(self.call("CLUSTER", "FAILOVER", "now"),
                         b"-ERR syntax error\r\n")
        self.state.set_master(self.add_node())
        self.assertEqual(self.call("CLUSTER", "FAILOVER"),
                         b"-ERR Master is down or failed, please use CLUSTER "
                         b"FAILOVER FORCE\r\n")
        # FORCE: no handshake with the master, the election may start.
        self.assertEqual(self.call("CLUSTER", "FAILOVER", "FORCE"), b"+OK\r\n")
        self.assertTrue(self.state.mf_can_start)
        self.assertEqual(self.state.mf_end, START + 5000)

    # -- connection flags ---------------------------------------------------------
    def test_asking_readonly_readwrite(self):
        client = self.proto.client
        self.assertEqual(self.call("ASKING"), b"+OK\r\n")
        self.assertTrue(client.asking)
        self.assertEqual(self.call("READONLY"), b"+OK\r\n")
        self.assertTrue(client.readonly)
        self.assertEqual(self.call("READWRITE"), b"+OK\r\n")
        self.assertFalse(client.readonly)


class DropPacketFilterTests(TestCase):
    """DEBUG DROP-CLUSTER-PACKET-FILTER <type>: -1 clears."""

    setUp = ClusterCommandTests.setUp
    call = ClusterCommandTests.call

    def test_drop_filter(self):
        self.server.settings.apply("enable-debug-command", ["yes"])
        self.assertEqual(self.call("DEBUG", "DROP-CLUSTER-PACKET-FILTER", "1"),
                         b"+OK\r\n")
        self.assertEqual(self.state.drop_packet_filter, 1)
        self.assertEqual(self.call("DEBUG", "drop-cluster-packet-filter", "-1"),
                         b"+OK\r\n")
        self.assertEqual(self.state.drop_packet_filter, -1)
        self.assertEqual(self.call("DEBUG", "DROP-CLUSTER-PACKET-FILTER", "x"),
                         b"-ERR value is not an integer or out of range\r\n")


class _Replicas:
    """The replication master's side as SETSLOT sees it: the replicas'
    announced capabilities, and what was fed to the stream."""

    def __init__(self, *capas):
        self.backlog = object()
        self.replicas = [type("Replica", (), {"capa": set(capa)})()
                         for capa in capas]
        self.fed = []

    def feed(self, data):
        self.fed.append(data)


class SetslotToReplicasTests(TestCase):
    """A master sends SETSLOT down its stream only when every replica
    announced it takes it (our replicas do, see test_replication's
    handshake; redis-server 7.0's don't)."""
    setUp = ClusterCommandTests.setUp
    call = ClusterCommandTests.call
    add_node = ClusterCommandTests.add_node

    def setslot(self, *capas):
        master = _Replicas(*capas)
        self.server.extensions["replication"] = type(
            "Replication", (), {"master": master})()
        self.add_node()
        self.call("CLUSTER", "ADDSLOTS", "5")
        self.assertEqual(self.call("CLUSTER", "SETSLOT", "5", "MIGRATING",
                                   OTHER), b"+OK\r\n")
        return master.fed

    def test_rcluster_replicas_get_it(self):
        capa = {"eof", "psync2", "rcluster-setslot"}
        self.assertEqual(self.setslot(capa, capa), [
            command("CLUSTER", "SETSLOT", "5", "MIGRATING", OTHER)])

    def test_not_with_a_redis_server_replica(self):
        self.assertEqual(self.setslot({"eof", "rcluster-setslot"},
                                      {"eof", "psync2"}), [])

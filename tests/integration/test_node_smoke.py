from twisted.trial.unittest import TestCase

from tests.integration.harness import have, start_node


class NodeSmokeTests(TestCase):
    def test_twistd_node_serves_redis_py(self):
        node = start_node(self)
        r = node.client()
        self.assertTrue(r.ping())
        r.set("k", "v")
        self.assertEqual(r.get("k"), b"v")

    def test_redis_cli_inline_and_errors(self):
        if not have("redis-cli"):
            self.skipTest("redis-cli not installed")
        node = start_node(self)
        self.assertEqual(node.cli("set", "a", "1").strip(), "OK")
        self.assertEqual(node.cli("get", "a").strip(), "1")
        self.assertIn("unknown command", node.cli("nosuchcommand"))

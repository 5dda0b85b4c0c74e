"""Persistence's sans-IO pieces outside the snapshot: the hidden and
accepted-but-unhonoured directives, and the server's -LOADING and
-MISCONF gates."""
from twisted.trial.unittest import TestCase

from rcluster.config import BY_NAME, ConfigError, Settings
from rcluster.persistence.service import MISCONF
from tests.protocol.helpers import ServerTestCase

HIDDEN = {"rdb-key-save-delay": "0", "key-load-delay": "0",
          "loading-process-events-interval-bytes": "2097152",
          "use-exit-on-panic": "no", "watchdog-period": "0"}


class HiddenDirectiveTests(TestCase):
    def test_defaults_and_ranges_as_redis(self):
        settings = Settings()
        for name, default in HIDDEN.items():
            self.assertEqual(settings.config_get([name]), [(name, default)])
        settings.config_set([("key-load-delay", "-5"),
                             ("rdb-key-save-delay", "2147483647")])
        self.assertEqual(settings.key_load_delay, -5)
        for name, value in [("loading-process-events-interval-bytes", "1023"),
                            ("watchdog-period", "-1"),
                            ("rdb-key-save-delay", "2147483648")]:
            self.assertRaises(ConfigError, settings.config_set,
                              [(name, value)])

    def test_patterns_leave_them_out(self):
        names = {name for name, _ in Settings().config_get(["*"])}
        self.assertTrue(names)
        self.assertFalse(names & set(HIDDEN))

    def test_unhonoured_directives_are_warned_about(self):
        settings = Settings()
        self.assertEqual(settings.unhonoured_warnings(), [])
        self.assertFalse(BY_NAME["watchdog-period"].honoured)
        self.assertTrue(BY_NAME["key-load-delay"].honoured)
        settings.load_text("watchdog-period 100\nuse-exit-on-panic yes\n"
                           "key-load-delay 10\n")
        self.assertEqual(settings.unhonoured_warnings(), [
            "Directive 'use-exit-on-panic' is accepted but has no effect in "
            "rcluster (set to 'yes')",
            "Directive 'watchdog-period' is accepted but has no effect in "
            "rcluster (set to '100')"])


class GateTests(ServerTestCase):
    def test_loading_refuses_commands_not_flagged_loading(self):
        self.server.loading = True
        self.server.refresh_gates()
        loading = "LOADING Redis is loading the dataset in memory"
        self.assertEqual(self.call("GET", "k"), loading)
        self.assertEqual(self.call("PING"), loading)
        self.assertEqual(self.call("SET", "k", "v"), loading)
        self.assertTrue(self.call("INFO", "persistence"))
        self.server.loading = False
        self.server.refresh_gates()
        self.assertEqual(self.call("SET", "k", "v"), b"OK")

    def test_misconf_refuses_writes_and_ping(self):
        self.server.write_refusal = MISCONF
        self.server.refresh_gates()
        text = str(MISCONF)
        self.assertTrue(text.startswith("MISCONF Redis is configured to save "
                                        "RDB snapshots"))
        self.assertEqual(self.call("SET", "k", "v"), text)
        self.assertEqual(self.call("PING"), text)
        self.assertIsNone(self.call("GET", "k"))
        self.server.write_refusal = None
        self.server.refresh_gates()
        self.assertEqual(self.call("PING"), b"PONG")
        self.assertEqual(self.call("SET", "k", "v"), b"OK")

    def test_commands_without_the_service_say_so(self):
        for args in (("SAVE",), ("BGSAVE",)):
            self.assertEqual(self.call(*args), "ERR persistence is not "
                             "available on this node")

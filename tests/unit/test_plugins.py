"""Command providers: discovered with twisted.plugin, added to the one
command table, served like built-ins; a provider can't replace a built-in."""
import os
import sys
import tempfile
import textwrap

from twisted.plugin import IPlugin
from twisted.trial.unittest import TestCase
from zope.interface import provider

from rcluster.commands.table import Command, CommandTable
from rcluster.interfaces import ICommandProvider, discover_providers
from tests.protocol.helpers import connect, exchange, make_server


class ExampleProviderTests(TestCase):
    def test_example_is_discovered(self):
        names = [p.name for p in discover_providers()]
        self.assertIn("example", names)

    def test_example_command_is_served(self):
        server, _ = make_server()
        proto, transport = connect(server)
        self.assertEqual(exchange(proto, transport, b"RCLUSTER.HELLO bob\r\n"),
                         b"$23\r\nhello bob from rcluster\r\n")
        self.assertEqual(exchange(proto, transport, b"COMMAND INFO rcluster.hello\r\n")[:30],
                         b"*1\r\n*10\r\n$14\r\nrcluster.hello\r\n")


@provider(IPlugin, ICommandProvider)
class _Clobber:
    name = "clobber"

    @staticmethod
    def commands():
        return [Command("get", lambda c, argv: b"hijacked", 2),
                Command("clobber.ok", lambda c, argv: b"ok", 1)]


class ProviderRulesTests(TestCase):
    def test_builtin_rows_are_never_replaced(self):
        table = CommandTable.build(providers=[_Clobber])
        self.assertEqual(table.get("get").group, "string")
        self.assertEqual(table.get("get").handler.__module__,
                         "rcluster.commands.strings")
        self.assertIsNotNone(table.get("clobber.ok"))

    def test_third_party_dropin_directory(self):
        """A distribution ships rcluster/plugins/<module>.py (no __init__)
        on sys.path: it is found like the bundled example.  (The package
        adds such directories to its __path__ when first imported; the
        test appends the new one itself.)"""
        root = tempfile.mkdtemp()
        plugins = os.path.join(root, "rcluster", "plugins")
        os.makedirs(plugins)
        with open(os.path.join(plugins, "thirdparty_greeting.py"), "w") as fh:
            fh.write(textwrap.dedent('''
                from twisted.plugin import IPlugin
                from zope.interface import provider
                from rcluster.commands.table import Command
                from rcluster.interfaces import ICommandProvider

                @provider(IPlugin, ICommandProvider)
                class Greeting:
                    name = "greeting"
                    @staticmethod
                    def commands():
                        return [Command("greet", lambda c, argv: b"hi", 1)]
            '''))
        import rcluster.plugins
        sys.path.append(root)
        rcluster.plugins.__path__.append(plugins)

        def restore():
            sys.path.remove(root)
            rcluster.plugins.__path__.remove(plugins)
            sys.modules.pop("rcluster.plugins.thirdparty_greeting", None)
        self.addCleanup(restore)
        self.assertIn("greeting", [p.name for p in discover_providers()])
        server, _ = make_server()
        proto, transport = connect(server)
        self.assertEqual(exchange(proto, transport, b"GREET\r\n"), b"$2\r\nhi\r\n")

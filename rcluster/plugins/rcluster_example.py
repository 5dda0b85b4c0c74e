"""An example command provider: ``RCLUSTER.HELLO [name]``.

It shows the whole extension contract in a few lines: a row for the one
command table, a handler taking (client, argv), discovered at start-up
through twisted.plugin because this module provides ICommandProvider.
"""
from twisted.plugin import IPlugin
from zope.interface import provider

from rcluster.commands.table import Command
from rcluster.interfaces import ICommandProvider


def hello(client, argv):
    who = argv[1] if len(argv) > 1 else b"world"
    return b"hello " + who + b" from rcluster"


@provider(IPlugin, ICommandProvider)
class ExampleProvider:
    name = "example"

    @staticmethod
    def commands():
        return [Command("rcluster.hello", hello, -1, frozenset({"fast"}),
                        group="server", summary="Greet (example plugin)")]

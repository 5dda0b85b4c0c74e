"""Extension points, discovered with ``twisted.plugin``.

A command provider adds rows to the one command table.  Providers live in
any package's ``rcluster/plugins/`` directory on ``sys.path`` (the
``rcluster.plugins`` package extends its own path like
``twisted.plugins``): a module there that defines an object providing
both ``twisted.plugin.IPlugin`` and ``ICommandProvider`` is found at
start-up by ``discover_providers``.
"""
from __future__ import annotations

from zope.interface import Attribute, Interface


class ICommandProvider(Interface):
    """Something that contributes commands to a node."""

    name = Attribute("A short name for logs and errors.")

    def commands():
        """Return an iterable of ``rcluster.commands.table.Command`` rows.

        Handlers take ``(client, argv)`` and return a reply value (see
        rcluster.resp.codec); raise ``CommandError`` for an error reply.
        Rows with the name of a built-in command are refused."""


def discover_providers():
    """Every ICommandProvider found in the rcluster.plugins packages."""
    from twisted.plugin import getPlugins

    import rcluster.plugins
    return list(getPlugins(ICommandProvider, rcluster.plugins))

"""Plugin drop-in directory for rcluster command providers.

Like ``twisted.plugins``, this package's path is extended with every
``rcluster/plugins`` directory found on ``sys.path``, so third-party
distributions can ship providers here without an ``__init__.py``.
"""
from twisted.plugin import pluginPackagePaths

__path__.extend(pluginPackagePaths(__name__))
__all__: list = []

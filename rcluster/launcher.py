"""``rcluster-server``: redis-server's command line for an rcluster node.

    rcluster-server [/path/to/redis.conf] [--directive value ...] [-]

Settings are read as redis-server reads them: the config file, then stdin
(``-``), then the ``--directive value`` options, each option becoming one
more config line.  Nothing else is assumed: unlike ``twistd rcluster``, a
node is a cluster node only with ``cluster-enabled yes``.  The node is the
same ``NodeService``, run through twistd's application runner, which
daemonizes (``daemonize yes``, unless supervised by systemd) and reports a
failed start to the waiting parent.  Logs go to ``logfile`` ("" = stdout)
in Redis's format, filtered by ``loglevel``.
"""
from __future__ import annotations

import os
import socket
import sys

from twisted.application import app, service
from twisted.internet.error import CannotListenError
from twisted.logger import ILogObserver
from twisted.scripts._twistd_unix import ServerOptions, UnixApplicationRunner

from rcluster import REDIS_VERSION
from rcluster import __version__ as VERSION
from rcluster.config import ConfigError, Settings
from rcluster.logs import logger

log = logger()

USAGE = """\
Usage: rcluster-server [/path/to/redis.conf] [options] [-]
       rcluster-server - (read config from stdin)
       rcluster-server -v or --version
       rcluster-server -h or --help

Examples:
       rcluster-server (run the server with default conf)
       echo 'maxmemory 128mb' | rcluster-server -
       rcluster-server /etc/rcluster/6379.conf
       rcluster-server --port 7777
       rcluster-server --port 7777 --cluster-enabled yes
       rcluster-server /etc/myredis.conf --loglevel verbose -
       rcluster-server /etc/myredis.conf --loglevel verbose
"""


class Arguments:
    """What the command line says: a config file, stdin, option lines."""

    def __init__(self, config_file=None, from_stdin=False, lines=()):
        self.config_file = config_file
        self.from_stdin = from_stdin
        self.lines = list(lines)

    @property
    def options_text(self) -> str:
        return "\n".join(self.lines)


def parse_args(argv) -> Arguments:
    """redis-server's argument grammar (server.c main()).

    ``--name`` starts a config line and every following argument that
    doesn't start with ``--`` is one more (quoted) argument of it, so
    ``--save "900 1" --save "60 100"`` and ``--save 900 1`` both work;
    ``"--port 7000"`` as one argument is a whole line.  A bare ``--save``
    means ``save ""``.  ``-`` first or last reads config from stdin."""
    args = Arguments()
    j = 0
    if argv and not argv[0].startswith("-"):
        args.config_file = os.path.abspath(argv[0])
        j = 1
    need_value = False      # the last --name still lacks an argument
    for i in range(j, len(argv)):
        arg = argv[i]
        last = i == len(argv) - 1
        if arg == "-" and (i == 0 or last):
            args.from_stdin = True
        elif not need_value and arg.startswith("--"):
            args.lines.append(arg[2:] + " ")
            need_value = len(arg[2:].split()) == 1
            if need_value and arg.lower() == "--save" and (
                    last or argv[i + 1].startswith("--")):
                args.lines[-1] += '""'
                need_value = False
        else:
            if not args.lines:
                args.lines.append("")
            args.lines[-1] += _quote(arg) + " "
            need_value = False
    return args


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _quote(arg: str) -> str:
    """An argument as a double-quoted config token (like sdscatrepr)."""
    out = []
    for byte in os.fsencode(arg):
        ch = chr(byte)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\x{byte:02x}")
    return '"' + "".join(out) + '"'


def load_settings(args: Arguments, stdin=None) -> Settings:
    """File, then stdin, then options: later lines win."""
    settings = Settings()
    if args.config_file:
        settings.load_file(args.config_file)
    if args.from_stdin:
        settings.load_text((stdin or sys.stdin).read(), "stdin")
    if args.lines:
        settings.load_text(args.options_text, "command line")
    return settings


def supervised_by_systemd(settings, environ=os.environ) -> bool:
    """Redis's redisIsSupervised for systemd ('auto' looks at NOTIFY_SOCKET)."""
    mode = settings.supervised
    return bool(environ.get("NOTIFY_SOCKET")) and mode in ("systemd", "auto")


def notify_systemd(message: str, environ=os.environ) -> bool:
    """sd_notify(3) without libsystemd: one datagram to NOTIFY_SOCKET."""
    address = environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
    return True


def fatal_config_error(message: str) -> int:
    sys.stderr.write(f"\n*** FATAL CONFIG FILE ERROR (Redis {REDIS_VERSION}, "
                     f"rcluster {VERSION}) ***\n{message}\n")
    return 1


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("-v", "--version"):
        print(f"rcluster server v={VERSION} redis-compat={REDIS_VERSION} "
              f"python={sys.version.split()[0]} bits=64")
        return 0
    if argv and argv[0] in ("-h", "--help"):
        sys.stderr.write(USAGE)
        return 1
    args = parse_args(argv)
    try:
        settings = load_settings(args)
    except ConfigError as err:
        return fatal_config_error(str(err))
    return run(settings, has_config=bool(argv))


def run(settings, has_config=True) -> int:
    """Run a node in this process through twistd's application runner."""
    systemd = supervised_by_systemd(settings)
    background = settings.daemonize and not systemd
    config = ServerOptions()
    config.parseOptions([] if background else ["--nodaemon"])
    config["pidfile"] = ""        # the node writes 'pidfile' itself
    config["no_save"] = True      # no pickled application on shutdown
    config["umask"] = _current_umask()   # twistd's daemons default to 077
    runner = _Runner(config, settings, has_config, systemd)
    try:
        runner.run()
    except ConfigError as err:
        return fatal_config_error(str(err))
    except CannotListenError as err:
        # sys.stderr is twistd's log redirection by now: use the real one.
        sys.__stderr__.write(f"{_listen_failure(err)}\n")
        return 1
    if runner._exitSignal is not None:
        app._exitWithSignal(runner._exitSignal)
    return 0


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _listen_failure(err: CannotListenError) -> str:
    return (f"Failed listening on {err.interface or '*'}:{err.port}: "
            f"{err.socketError}, aborting.")


class _Runner(UnixApplicationRunner):
    """twistd's Unix runner (daemonize, signals, reactor), with our node
    as the application and Redis-format logging as its log observer."""

    def __init__(self, config, settings, has_config, systemd):
        super().__init__(config)
        self.settings = settings
        self.has_config = has_config
        self.systemd = systemd

    def createOrGetApplication(self):
        from twisted.internet import reactor

        from rcluster.tap import NodeService

        node = NodeService(self.settings, reactor)
        _check_logfile(self.settings.logfile)
        application = service.Application("rcluster")
        node.setServiceParent(application)
        # Redis logs nothing to stdout once it has daemonized.
        stream = sys.stdout if self.config["nodaemon"] else None
        application.setComponent(ILogObserver, node.log_observer(stream))
        return application

    def setupEnvironment(self, chroot, rundir, nodaemon, umask, pidfile):
        super().setupEnvironment(chroot, rundir, nodaemon, umask, pidfile)
        # Now in the final (maybe daemonized) process: report its pid.
        log.warn("oO0OoO0OoO0Oo rcluster is starting oO0OoO0OoO0Oo")
        log.warn("rcluster version={version} (Redis {redis}), bits=64, "
                 "pid={pid}, just started", version=VERSION,
                 redis=REDIS_VERSION, pid=os.getpid())
        if self.has_config:
            log.warn("Configuration loaded")
        else:
            log.warn("Warning: no config file specified, using the default "
                     "config. In order to specify a config file use "
                     "rcluster-server /path/to/redis.conf")

    def startApplication(self, application):
        try:
            super().startApplication(application)
        except CannotListenError as err:
            log.warn("{message}", message=_listen_failure(err))
            raise
        if self.systemd:
            notify_systemd("STATUS=Ready to accept connections\nREADY=1\n")


def _check_logfile(path):
    if path:
        try:
            open(path, "a").close()
        except OSError as err:
            raise ConfigError(f"Can't open the log file: {err.strerror}")


if __name__ == "__main__":
    sys.exit(main())

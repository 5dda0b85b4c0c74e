"""Redis's log format as a twisted.logger observer.

    12345:M 07 Mar 2024 10:15:02.123 * Ready to accept connections

``<pid>:<role> <date> <level> <message>``, role M (master) or S (replica),
level ``.`` debug, ``-`` verbose, ``*`` notice, ``#`` warning.  Lines go to
the ``logfile`` directive's path (opened per line, as Redis does, so
logrotate needs no signal) or, when it is "", to a stream (stdout).
``loglevel`` filters them, read per event so CONFIG SET loglevel applies.

Twisted levels map to Redis's: debug -> debug, info -> notice, warn and
above -> warning.  Info events from outside rcluster (Twisted's own
"Starting factory ...") count as verbose.  An event can name its Redis
level itself: ``log.info("Accepted {addr}", addr=a, redis_level="verbose")``.
"""
from __future__ import annotations

import os
import time

from twisted.logger import (ILogObserver, Logger, LogLevel, formatEvent,
                            globalLogPublisher)
from zope.interface import implementer

LEVELS = ("debug", "verbose", "notice", "warning")
_MARKS = ".-*#"
_FROM_TWISTED = {LogLevel.debug: 0, LogLevel.info: 2, LogLevel.warn: 3,
                 LogLevel.error: 3, LogLevel.critical: 3}


def level_of(event) -> int:
    """The Redis level (an index into LEVELS) of a twisted.logger event."""
    named = event.get("redis_level")
    if named in LEVELS:
        return LEVELS.index(named)
    level = _FROM_TWISTED.get(event.get("log_level"), 2)
    if level == 2 and not str(event.get("log_namespace", "")).startswith("rcluster"):
        return 1
    return level


def format_line(event, role="M", pid=None) -> str:
    """One event as a Redis log line, newline included."""
    stamp = event.get("log_time") or time.time()
    millis = int(stamp * 1000) % 1000
    when = time.strftime("%d %b %Y %H:%M:%S", time.localtime(stamp))
    text = formatEvent(event)
    failure = event.get("log_failure")
    if failure is not None:
        text = f"{text}\n{failure.getTraceback()}".rstrip("\n")
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{role} {when}.{millis:03d} {_MARKS[level_of(event)]} {text}\n"


@implementer(ILogObserver)
class RedisLogObserver:
    """Writes events at or above ``settings.loglevel`` as Redis log lines.

    ``role`` is a callable answering "M" or "S"; ``stream`` receives the
    lines when ``settings.logfile`` is "" (None: they are dropped, as
    Redis does when it daemonizes with logfile "")."""

    def __init__(self, settings, role=lambda: "M", stream=None):
        self.settings = settings
        self.role = role
        self.stream = stream

    def __call__(self, event):
        if level_of(event) < LEVELS.index(self.settings.loglevel):
            return
        line = format_line(event, self.role())
        if self.settings.logfile:
            with open(self.settings.logfile, "a") as fh:
                fh.write(line)
        elif self.stream is not None:
            self.stream.write(line)
            self.stream.flush()


@implementer(ILogObserver)
class LevelGate:
    """Where rcluster's loggers publish: events below the node's
    ``loglevel`` stop here, so no observer (twistd's own log file
    included) is flooded with debug lines such as "Pinging node"."""

    def __init__(self):
        self.settings = None          # the node's Settings, once known

    def __call__(self, event):
        settings = self.settings
        minimum = LEVELS.index(settings.loglevel) if settings is not None \
            else LEVELS.index("notice")
        if level_of(event) >= minimum:
            globalLogPublisher(event)


GATE = LevelGate()


def logger(namespace: str = "rcluster") -> Logger:
    """The Logger every rcluster module logs with."""
    return Logger(namespace=namespace, observer=GATE)

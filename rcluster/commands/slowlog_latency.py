"""SLOWLOG and LATENCY (Redis's slowlog.c and latency.c), on the state
kept by rcluster/slowlog.py and rcluster/latency.py (``server.latency``)."""
from __future__ import annotations

from rcluster.commands.common import (help_subcommand, parse_int,
                                      subcommand_syntax_error)
from rcluster.commands.table import CommandError, command, container
from rcluster.resp.codec import OK, Map, Verbatim

_G = dict(group="server")
_ACL = "dangerous"
_ALL_NODES = "request_policy:all_nodes"
_NONDET = "nondeterministic_output"

# -- SLOWLOG ------------------------------------------------------------------

container("slowlog", summary="A container for slow log commands",
          since="2.2.12", **_G)
_SLOWLOG = dict(parent="slowlog", since="2.2.12", acl=_ACL, **_G)
_COUNT_ERROR = "ERR count should be greater than or equal to -1"


@command("get", -2, "admin loading stale",
         tips=(_ALL_NODES, _NONDET), summary="Get the slow log's entries",
         complexity="O(N) where N is the number of entries returned",
         history=(("4.0.0", "Added client IP address, port and name to the "
                            "reply."),), **_SLOWLOG)
def slowlog_get(c, argv):
    if len(argv) > 3:
        raise subcommand_syntax_error(argv)
    count = 10
    if len(argv) == 3:
        count = parse_int(argv[2], _COUNT_ERROR)
        if count < -1:
            raise CommandError(_COUNT_ERROR)
    return c.server.latency.slowlog.get(count)


@command("len", 2, "admin loading stale",
         tips=(_ALL_NODES, "response_policy:agg_sum", _NONDET),
         summary="Get the slow log's length", complexity="O(1)", **_SLOWLOG)
def slowlog_len(c, argv):
    return len(c.server.latency.slowlog)


@command("reset", 2, "admin loading stale",
         tips=(_ALL_NODES, "response_policy:all_succeeded"),
         summary="Clear all entries from the slow log",
         complexity="O(N) where N is the number of entries in the slowlog",
         **_SLOWLOG)
def slowlog_reset(c, argv):
    c.server.latency.slowlog.reset()
    return OK


slowlog_help = help_subcommand((
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean "
    "all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and "
    "port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
), parent="slowlog", since="6.2.0", **_G)


# -- LATENCY ------------------------------------------------------------------

container("latency", summary="A container for latency diagnostics commands",
          since="2.8.13", **_G)
_LATENCY = dict(parent="latency", acl=_ACL, **_G)
_FLAGS = "admin noscript loading stale"
_SPECIAL = (_NONDET, _ALL_NODES, "response_policy:special")


def _text(arg: bytes) -> str:
    return arg.decode("utf-8", "replace")


@command("doctor", 2, _FLAGS, tips=_SPECIAL, since="2.8.13",
         summary="Return a human readable latency analysis report.",
         complexity="O(1)", **_LATENCY)
def latency_doctor(c, argv):
    server = c.server
    return Verbatim(server.latency.monitor.doctor(
        server.settings, int(server.clock.seconds())).encode())


@command("graph", 3, _FLAGS, tips=_SPECIAL, since="2.8.13",
         summary="Return a latency graph for the event.", complexity="O(1)",
         **_LATENCY)
def latency_graph(c, argv):
    server = c.server
    monitor = server.latency.monitor
    found = monitor.find(_text(argv[2]))
    if found is None:
        raise CommandError("ERR No samples available for event '%s'"
                           % _text(argv[2]))
    name, ts = found
    return Verbatim(monitor.graph(name, ts,
                                  int(server.clock.seconds())).encode())


@command("history", 3, _FLAGS, tips=_SPECIAL, since="2.8.13",
         summary="Return timestamp-latency samples for the event.",
         complexity="O(1)", **_LATENCY)
def latency_history(c, argv):
    found = c.server.latency.monitor.find(_text(argv[2]))
    return [] if found is None else [list(s) for s in found[1].ordered()]


@command("latest", 2, _FLAGS, tips=(_NONDET, _ALL_NODES,
                                    "response_policy:special"),
         since="2.8.13",
         summary="Return the latest latency samples for all events.",
         complexity="O(1)", **_LATENCY)
def latency_latest(c, argv):
    return c.server.latency.monitor.latest()


@command("reset", -2, _FLAGS,
         tips=(_ALL_NODES, "response_policy:all_succeeded"), since="2.8.13",
         summary="Reset latency data for one or more events.",
         complexity="O(1)", **_LATENCY)
def latency_reset(c, argv):
    monitor = c.server.latency.monitor
    if len(argv) == 2:
        return monitor.reset()
    return sum(monitor.reset([_text(a)]) for a in argv[2:])


def _cdf_reply(hist) -> Map:
    cdf = hist.cdf()
    return Map([(b"calls", hist.total),
                (b"histogram_usec", Map(list(zip(cdf[0::2], cdf[1::2]))))])


def _rows_for(table, name: str) -> list:
    """lookupCommandBySds: a command (with its subcommands) or a
    'container|sub' name; [] for an unknown one."""
    top, _, sub = name.lower().partition("|")
    row = table.get(top)
    if row is None:
        return []
    if sub:
        row = row.subcommands.get(sub)
        return [] if row is None else [row]
    return [row, *row.subcommands.values()]


@command("histogram", -2, _FLAGS, tips=_SPECIAL, since="7.0.0",
         summary="Return the cumulative distribution of latencies of a "
                 "subset of commands or all.",
         complexity="O(N) where N is the number of commands with latency "
                    "information being retrieved.", **_LATENCY)
def latency_histogram(c, argv):
    server = c.server
    histograms = server.latency.histograms
    if len(argv) == 2:
        rows = [row for top in server.table
                for row in (top, *top.subcommands.values())]
    else:
        rows = [row for arg in argv[2:]
                for row in _rows_for(server.table, _text(arg))]
    out = []
    for row in rows:
        hist = histograms.get(row)
        if hist is not None and hist.total:
            out.append((row.name.encode(), _cdf_reply(hist)))
    return Map(out)


latency_help = help_subcommand((
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a "
    "histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
), parent="latency", since="2.8.13", **_G)

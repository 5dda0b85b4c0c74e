"""CLIENT subcommands (Redis 7.0's clientCommand, networking.c).

Identity: ID, SETNAME, GETNAME, INFO, LIST.  Control: KILL, PAUSE and
UNPAUSE (Server.pause), REPLY, UNBLOCK (Blocking.unblock_by_request),
NO-EVICT, NO-TOUCH.  Server-assisted client-side caching: TRACKING,
CACHING, GETREDIR, TRACKINGINFO (the state and the invalidations are in
rcluster/tracking.py).
"""
from __future__ import annotations

from rcluster import tracking
from rcluster.commands.common import (LLONG_MAX, SYNTAX, help_subcommand,
                                      option_pairs, parse_int,
                                      subcommand_syntax_error)
from rcluster.commands.connection import validate_client_name
from rcluster.commands.table import CommandError, command, container
from rcluster.resp.codec import NO_REPLY, OK, Map, SetReply, Verbatim

container("client", group="connection", since="2.4.0", flags="sentinel",
          summary="A container for client connection commands")

_SUB = dict(parent="client", group="connection", acl="connection")
_PLAIN = "noscript loading stale sentinel"
_ADMIN = "admin noscript loading stale sentinel"

# CLIENT LIST / KILL TYPE names -> the type client_type() reports.
CLIENT_TYPES = {b"normal": "normal", b"slave": "replica",
                b"replica": "replica", b"pubsub": "pubsub",
                b"master": "master"}


def _text(arg: bytes) -> str:
    return arg.decode("utf-8", "replace")


def client_type(c) -> str:
    """Redis's getClientType: a MONITOR client counts as normal."""
    if c.kind in ("master", "replica"):
        return c.kind
    if c.channels or c.patterns or c.shard_channels:
        return "pubsub"
    return "normal"


def _parse_type(arg: bytes) -> str:
    kind = CLIENT_TYPES.get(arg.lower())
    if kind is None:
        raise CommandError("ERR Unknown client type '%s'" % _text(arg))
    return kind


def unix_socket_client(c) -> bool:
    unixsocket = c.server.settings.unixsocket
    return bool(unixsocket) and c.addr == unixsocket + ":0"


def is_local(c) -> bool:
    """Redis's islocalClient: a unix socket or a loopback address."""
    host = c.addr.rsplit(":", 1)[0]
    return host in ("127.0.0.1", "[::1]") or unix_socket_client(c)


def protected_action_allowed(setting: str, c) -> bool:
    """enable-debug-command / enable-protected-configs: yes, or local
    and a loopback client."""
    return setting == "yes" or (setting == "local" and is_local(c))


def info_line(c, now: float, running=None) -> str:
    """One CLIENT LIST line (Redis's catClientInfoString).  ``running`` is
    (command name, argv) of the command this client is executing."""
    if running is not None:
        cmd_name = running[0]
        argv_mem = sum(len(arg) for arg in running[1])
    else:
        cmd_name = c.last_cmd.name if c.last_cmd is not None else "NULL"
        argv_mem = 0
    queued = c.multi
    multi_mem = sum(len(arg) for _, args in queued for arg in args) \
        if queued else 0
    qbuf = c.query_buffer
    omem = sum(len(chunk) for chunk in c.out)
    if c.output_pending is not None:      # what the transport still holds
        omem += c.output_pending()
    return (
        f"id={c.id} addr={c.addr} laddr={c.laddr} fd={c.fd} "
        f"name={_text(c.name)} age={int(now) - int(c.created)} "
        f"idle={int(now) - int(c.last_interaction)} flags={c.flag_letters()} "
        f"db={c.db} sub={len(c.channels)} psub={len(c.patterns)} "
        f"ssub={len(c.shard_channels)} "
        f"multi={len(queued) if queued is not None else -1} "
        f"qbuf={qbuf} qbuf-free=0 argv-mem={argv_mem} multi-mem={multi_mem} "
        f"rbs=0 rbp=0 obl=0 oll=0 omem={omem} "
        f"tot-mem={qbuf + argv_mem + multi_mem + omem} "
        f"events=r{'w' if c.out else ''} cmd={cmd_name} user={c.user} "
        f"redir={c.tracking.redirect if c.tracking is not None else -1} "
        f"resp={3 if c.resp3 else 2}")


def _lines(c, clients, running) -> Verbatim:
    """CLIENT LIST / INFO text; ``running`` is (name, argv) of the command
    the caller is executing."""
    now = c.server.clock.seconds()
    return Verbatim("".join(
        info_line(other, now, running if other is c else None) + "\n"
        for other in clients).encode())


@command("id", 2, _PLAIN, since="5.0.0", complexity="O(1)",
         summary="Returns the client ID for the current connection", **_SUB)
def client_id(c, argv):
    return c.id


@command("setname", 3, _PLAIN, since="2.6.9", complexity="O(1)",
         summary="Set the current connection name", **_SUB)
def client_setname(c, argv):
    c.name = validate_client_name(argv[2])
    return OK


@command("getname", 2, _PLAIN, since="2.6.9", complexity="O(1)",
         summary="Get the current connection name", **_SUB)
def client_getname(c, argv):
    return c.name or None


@command("info", 2, _PLAIN, since="6.2.0", complexity="O(1)",
         tips=("nondeterministic_output",),
         summary="Returns information about the current client connection.",
         **_SUB)
def client_info(c, argv):
    return _lines(c, [c], ("client|info", argv))


@command("list", -2, _ADMIN, since="2.4.0",
         tips=("nondeterministic_output",),
         summary="Get the list of client connections",
         complexity="O(N) where N is the number of client connections",
         history=(("2.8.12", "Added unique client `id` field."),
                  ("5.0.0", "Added optional `TYPE` filter."),
                  ("6.2.0", "Added `laddr` field and the optional `ID` "
                            "filter.")), **_SUB)
def client_list(c, argv):
    clients = c.server.clients
    if len(argv) == 4 and argv[2].lower() == b"type":
        kind = _parse_type(argv[3])
        chosen = [cl for cl in clients.values() if client_type(cl) == kind]
    elif len(argv) > 3 and argv[2].lower() == b"id":
        ids = [parse_int(arg, "ERR Invalid client ID") for arg in argv[3:]]
        chosen = [clients[i] for i in ids if i in clients]
    elif len(argv) != 2:
        raise CommandError(SYNTAX)
    else:
        chosen = list(clients.values())
    return _lines(c, chosen, ("client|list", argv))


def _kill_filters(argv) -> dict:
    """CLIENT KILL's new form: option value pairs -> filters."""
    filters = {"skipme": True}
    for option, value in option_pairs(argv, 2):
        if option == b"id":
            filters["id"] = parse_int(value, "ERR client-id should be "
                                      "greater than 0", 1, LLONG_MAX)
        elif option == b"type":
            filters["type"] = _parse_type(value)
        elif option == b"addr":
            filters["addr"] = _text(value)
        elif option == b"laddr":
            filters["laddr"] = _text(value)
        elif option == b"user":
            if value != b"default":     # the only user rcluster has
                raise CommandError("ERR No such user '%s'" % _text(value))
            filters["user"] = "default"
        elif option == b"skipme":
            if value.lower() not in (b"yes", b"no"):
                raise CommandError(SYNTAX)
            filters["skipme"] = value.lower() == b"yes"
        else:
            raise CommandError(SYNTAX)
    return filters


def _matches(other, c, filters) -> bool:
    return (other.addr == filters.get("addr", other.addr)
            and other.laddr == filters.get("laddr", other.laddr)
            and client_type(other) == filters.get("type", client_type(other))
            and other.id == filters.get("id", other.id)
            and other.user == filters.get("user", other.user)
            and not (other is c and filters["skipme"]))


@command("kill", -3, _ADMIN, since="2.4.0",
         summary="Kill the connection of a client",
         complexity="O(N) where N is the number of client connections",
         history=(("2.8.12", "Added new filter format."),
                  ("2.8.12", "`ID` option."),
                  ("3.2.0", "Added `master` type in for `TYPE` option."),
                  ("5.0.0", "Replaced `slave` `TYPE` with `replica`. `slave` "
                            "still supported for backward compatibility."),
                  ("6.2.0", "`LADDR` option.")), **_SUB)
def client_kill(c, argv):
    old_form = len(argv) == 3
    if old_form:
        # CLIENT KILL addr: a client may kill itself this way.
        filters = {"addr": _text(argv[2]), "skipme": False}
    else:
        filters = _kill_filters(argv)
    victims = [other for other in list(c.server.clients.values())
               if _matches(other, c, filters)]
    for victim in victims:
        if victim is c:
            c.closing = True        # after this reply
        else:
            victim.kill()
            c.server.client_gone(victim)
    if old_form:
        if not victims:
            raise CommandError("ERR No such client")
        return OK
    return len(victims)


@command("pause", -3, _ADMIN, since="2.9.50",
         summary="Stop processing commands from clients for some time",
         complexity="O(1)",
         history=(("6.2.0", "`CLIENT PAUSE WRITE` mode added along with the "
                            "`mode` option."),), **_SUB)
def client_pause(c, argv):
    if len(argv) > 4:
        raise subcommand_syntax_error(argv)
    kind = "all"
    if len(argv) == 4:
        mode = argv[3].lower()
        if mode not in (b"write", b"all"):
            raise CommandError("ERR CLIENT PAUSE mode must be WRITE or ALL")
        kind = mode.decode()
    server = c.server
    timeout = parse_int(argv[2], "ERR timeout is not an integer or out of "
                                 "range")
    if timeout < 0:
        raise CommandError("ERR timeout is negative")
    if timeout > LLONG_MAX - server.now_ms():
        raise CommandError("ERR timeout is out of range")
    server.pause(kind, server.clock.seconds() + timeout / 1000)
    return OK


@command("unpause", 2, _ADMIN, since="6.2.0",
         summary="Resume processing of clients that were paused",
         complexity="O(N) Where N is the number of paused clients", **_SUB)
def client_unpause(c, argv):
    c.server.unpause()
    return OK


@command("reply", 3, _PLAIN, since="3.2.0", complexity="O(1)",
         summary="Instruct the server whether to reply to commands", **_SUB)
def client_reply(c, argv):
    mode = argv[2].lower()
    if mode not in (b"on", b"off", b"skip"):
        raise CommandError(SYNTAX)
    c.set_reply_mode(mode.decode())
    # OFF and SKIP answer nothing, but an EXEC reply array needs an
    # element for every command.
    return OK if mode == b"on" or c.server.in_exec else NO_REPLY


@command("unblock", -3, _ADMIN, since="5.0.0",
         summary="Unblock a client blocked in a blocking command from a "
                 "different connection",
         complexity="O(log N) where N is the number of client connections",
         **_SUB)
def client_unblock(c, argv):
    if len(argv) > 4:
        raise subcommand_syntax_error(argv)
    error = False
    if len(argv) == 4:
        reason = argv[3].lower()
        if reason not in (b"timeout", b"error"):
            raise CommandError(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        error = reason == b"error"
    target = c.server.clients.get(parse_int(argv[2]))
    if target is None:
        return 0
    return int(c.server.blocking.unblock_by_request(target, error))


def _on_off(arg: bytes) -> bool:
    value = arg.lower()
    if value not in (b"on", b"off"):
        raise CommandError(SYNTAX)
    return value == b"on"


@command("no-evict", 3, _ADMIN, since="7.0.0", complexity="O(1)",
         summary="Set client eviction mode for the current connection",
         **_SUB)
def client_no_evict(c, argv):
    c.no_evict = _on_off(argv[2])
    return OK


@command("no-touch", 3, "noscript loading stale", since="7.2.0",
         complexity="O(1)",
         summary="Controls whether commands sent by the client will alter "
                 "the LRU/LFU of the keys they access.", **_SUB)
def client_no_touch(c, argv):
    c.no_touch = _on_off(argv[2])
    c.refresh()         # a NO-TOUCH client takes the checked path
    return OK


@command("tracking", -3, _PLAIN, since="6.0.0",
         summary="Enable or disable server assisted client side caching "
                 "support",
         complexity="O(1). Some options may introduce additional "
                    "complexity.", **_SUB)
def client_tracking(c, argv):
    tracking.tracking_command(c, argv)
    return OK


@command("caching", 3, _PLAIN, since="6.0.0", complexity="O(1)",
         summary="Instruct the server about tracking or not keys in the "
                 "next request", **_SUB)
def client_caching(c, argv):
    t = c.tracking
    if t is None:
        raise CommandError("ERR CLIENT CACHING can be called only when the "
                           "client is in tracking mode with OPTIN or "
                           "OPTOUT mode enabled")
    value = argv[2].lower()
    if value == b"yes":
        if not t.optin:
            raise CommandError("ERR CLIENT CACHING YES is only valid when "
                               "tracking is enabled in OPTIN mode.")
    elif value == b"no":
        if not t.optout:
            raise CommandError("ERR CLIENT CACHING NO is only valid when "
                               "tracking is enabled in OPTOUT mode.")
    else:
        raise CommandError(SYNTAX)
    t.caching = True
    return OK


@command("getredir", 2, _PLAIN, since="6.0.0", complexity="O(1)",
         summary="Get tracking notifications redirection client ID if any",
         **_SUB)
def client_getredir(c, argv):
    return c.tracking.redirect if c.tracking is not None else -1


@command("trackinginfo", 2, _PLAIN, since="6.2.0", complexity="O(1)",
         summary="Return information about server assisted client side "
                 "caching for the current connection", **_SUB)
def client_trackinginfo(c, argv):
    t = c.tracking
    if t is None:
        return Map([(b"flags", SetReply([b"off"])), (b"redirect", -1),
                    (b"prefixes", [])])
    return Map([(b"flags", SetReply(t.flags())), (b"redirect", t.redirect),
                (b"prefixes", sorted(t.prefixes))])


_CLIENT_HELP = (
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT "
    "modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is "
    "enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
)


client_help = help_subcommand(_CLIENT_HELP, "loading stale sentinel", **_SUB)

"""Stream commands (t_stream.c): XADD, XRANGE, XREAD[GROUP], consumer
groups, XPENDING, XCLAIM, XAUTOCLAIM, XINFO...  The data structure is
rcluster/types/stream.py; this module parses, replies and propagates.

Propagation follows Redis: XADD with ``*`` / ``ms-*`` goes out with the ID
it got, an approximate trim (``~``) as the exact trim it did; XREAD never
propagates, XREADGROUP / XCLAIM / XAUTOCLAIM propagate their effects as
idempotent ``XCLAIM ... FORCE JUSTID LASTID`` (plus ``XGROUP SETID`` /
``XGROUP CREATECONSUMER`` where Redis emits them).

Blocking XREAD / XREADGROUP park on the keys (rcluster/blocking.py) with
``$`` resolved to the stream's last ID at the time; when a key is written
the command runs again for that key only, as Redis serves the key that got
ready.  A blocked XREADGROUP whose key is deleted or replaced by another
type gets ``-UNBLOCKED``, one whose group is destroyed ``-NOGROUP``.
"""
from __future__ import annotations

from rcluster.commands.common import (
    LLONG_MAX, NOT_INT, SYNTAX, WRONGTYPE, also_propagate, arity_error,
    help_subcommand, no_propagation, parse_int, parse_ranged, propagate_as,
    read, subcommand_syntax_error, write)
from rcluster.commands.table import CommandError, KeySpec, command, container
from rcluster.memory import stream_entry_cost
from rcluster.notify import STREAM, notify
from rcluster.resp.codec import NULL_ARRAY, OK, Map
from rcluster.types.stream import (
    INVALID_ENTRIES_READ, MAX64, MAX_ID, MIN_ID, NACK, Group, Stream,
    StreamIDError, decr_id, format_id, incr_id, parse_id)

_G = dict(group="stream")
INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
XREAD_BLOCKED_DEFAULT_COUNT = 1000
_STREAM_TIP = ("nondeterministic_output",)


# -- helpers ------------------------------------------------------------------

def _id(arg: bytes, missing_seq=0, strict=True):
    try:
        return parse_id(arg, missing_seq, strict)[0]
    except StreamIDError:
        raise CommandError(INVALID_ID) from None


def _interval(arg: bytes, missing_seq: int, start: bool):
    """An XRANGE / XPENDING bound, ``(`` for exclusive -> id."""
    if len(arg) > 1 and arg[:1] == b"(":
        sid = _id(arg[1:], missing_seq, strict=True)
        moved = incr_id(sid) if start else decr_id(sid)
        if moved is None:
            raise CommandError("ERR invalid %s ID for the interval"
                               % ("start" if start else "end"))
        return moved
    return _id(arg, missing_seq, strict=False)


def _now(c) -> int:
    return c.server.now_ms()


def _ll(arg: bytes, error: str = NOT_INT) -> int:
    return parse_int(arg, error)


def _entry(sid, fields):
    return [format_id(sid), list(fields)]


def _stream_for_write(c, key):
    return write(c, key, Stream)


def _nogroup(key: bytes, group: bytes) -> str:
    return "NOGROUP No such key '%s' or consumer group '%s'" % (
        _text(key), _text(group))


def _text(arg: bytes) -> str:
    return arg.decode("utf-8", "surrogateescape")


def _obeys(c) -> bool:
    """Redis's mustObeyClient: the master's link (or the AOF loader)."""
    return getattr(c, "kind", "normal") in ("master", "aof")


# -- XADD / XTRIM ----------------------------------------------------------

class _TrimArgs:
    __slots__ = ("strategy", "arg_idx", "approx", "limit", "maxlen", "minid",
                 "id", "id_given", "seq_given", "no_mkstream")

    def __init__(self):
        self.strategy = None          # None, "maxlen", "minid"
        self.arg_idx = 0
        self.approx = False
        self.limit = 0
        self.maxlen = 0
        self.minid = MIN_ID
        self.id = None
        self.id_given = False
        self.seq_given = True
        self.no_mkstream = False


_BOTH = ("ERR syntax error, MAXLEN and MINID options at the same time are "
         "not compatible")


def _parse_add_or_trim(c, argv, xadd: bool):
    """streamParseAddOrTrimArgsOrReply -> (args, position of the ID)."""
    args = _TrimArgs()
    limit_given = False
    i = 2
    argc = len(argv)
    while i < argc:
        more = argc - 1 - i
        opt = argv[i]
        low = opt.lower()
        if xadd and opt == b"*":
            break
        if low in (b"maxlen", b"minid") and more:
            if args.strategy is not None:
                raise CommandError(_BOTH)
            args.approx = False
            nxt = argv[i + 1]
            if more >= 2 and nxt == b"~":
                args.approx = True
                i += 1
            elif more >= 2 and nxt == b"=":
                i += 1
            if low == b"maxlen":
                args.maxlen = _ll(argv[i + 1])
                if args.maxlen < 0:
                    raise CommandError("ERR The MAXLEN argument must be >= 0.")
                args.strategy = "maxlen"
            else:
                args.minid = _id(argv[i + 1])
                args.strategy = "minid"
            i += 1
            args.arg_idx = i
        elif low == b"limit" and more:
            args.limit = _ll(argv[i + 1])
            if args.limit < 0:
                raise CommandError("ERR The LIMIT argument must be >= 0.")
            limit_given = True
            i += 1
        elif xadd and low == b"nomkstream":
            args.no_mkstream = True
        elif xadd:
            try:
                args.id, args.seq_given = parse_id(opt, 0, True, True)
            except StreamIDError:
                raise CommandError(INVALID_ID) from None
            args.id_given = True
            break
        else:
            raise CommandError(SYNTAX)
        i += 1
    if args.limit and args.strategy is None:
        raise CommandError("ERR syntax error, LIMIT cannot be used without "
                           "specifying a trimming strategy")
    if not xadd and args.strategy is None:
        raise CommandError("ERR syntax error, XTRIM must be called with a "
                           "trimming strategy")
    if _obeys(c):
        args.limit = 0
    elif limit_given:
        if not args.approx:
            raise CommandError("ERR syntax error, LIMIT cannot be used "
                               "without the special ~ option")
    elif args.approx:
        limit = 100 * c.server.settings.stream_node_max_entries
        if limit <= 0:
            limit = 10000
        args.limit = min(limit, 1000000)
    else:
        args.limit = 0
    return args, i


# XADD key * field value...: what _parse_add_or_trim gives (never changed).
_PLAIN_ADD = _TrimArgs()


def _trim(stream, args) -> int:
    if args.strategy == "maxlen":
        return stream.trim(maxlen=args.maxlen, approx=args.approx,
                           limit=args.limit)
    return stream.trim(minid=args.minid, approx=args.approx, limit=args.limit)


def _rewrite_trim(stream, args, argv):
    """streamRewriteApproxSpecifier + streamRewriteTrimArgument."""
    argv[args.arg_idx - 1] = b"="
    if args.strategy == "maxlen":
        argv[args.arg_idx] = b"%d" % len(stream)
    else:
        argv[args.arg_idx] = format_id(stream.first_id_with_tombstones())


@command("xadd", -5, "write denyoom fast",
         specs=[KeySpec(flags=("RW", "update"), index=1,
                        notes="UPDATE instead of INSERT because of the "
                              "optional trimming feature")],
         summary="Appends a new entry to a stream", since="5.0.0",
         complexity="O(1) when adding a new entry, O(N) when trimming where "
                    "N being the number of entries evicted.",
         tips=_STREAM_TIP, **_G)
def xadd(c, argv):
    if argv[2] == b"*":
        args, idpos = _PLAIN_ADD, 2     # no option, a new ID: nothing to parse
    else:
        args, idpos = _parse_add_or_trim(c, argv, True)
    field_pos = idpos + 1
    nfields = len(argv) - field_pos
    if nfields < 2 or nfields % 2:
        raise arity_error(argv)
    if args.id_given and args.seq_given and args.id == MIN_ID:
        raise CommandError("ERR The ID specified in XADD must be greater "
                           "than 0-0")
    key = argv[1]
    server = c.server
    ks = server.keyspace
    stream = write(c, key, Stream)
    if stream is None:
        if args.no_mkstream:
            return None
        stream = Stream()
        created = True
    else:
        created = False
    if stream.last_id == MAX_ID:
        raise CommandError("ERR The stream has exhausted the last possible "
                           "ID, unable to add more items")
    fields = argv[field_pos:]
    if args.id_given:
        if args.seq_given:
            sid = args.id
        elif stream.last_id[0] == args.id[0]:
            if stream.last_id[1] == MAX64:
                sid = None
            else:
                sid = (args.id[0], stream.last_id[1] + 1)
        else:
            sid = args.id
    else:
        sid = stream.next_id(server.now_ms())
    if sid is None or sid <= stream.last_id:
        raise CommandError("ERR The ID specified in XADD is equal or smaller "
                           "than the target stream top item")
    total = sum(map(len, fields))
    if total > (1 << 30):
        raise CommandError("ERR Elements are too large to be stored")
    settings = server.settings
    stream.append(sid, fields, settings.stream_node_max_bytes,
                  settings.stream_node_max_entries, total)
    if created:
        ks.add(key, stream)
    else:
        ks.grew(key, stream_entry_cost(fields, total))
    notify(c, STREAM, b"xadd", key)
    rewritten = None
    if args.strategy is not None:
        if _trim(stream, args):
            notify(c, STREAM, b"xtrim", key)
        if args.approx:
            rewritten = list(argv)
            _rewrite_trim(stream, args, rewritten)
    reply = format_id(sid)
    if not args.id_given or not args.seq_given:
        rewritten = rewritten or list(argv)
        rewritten[idpos] = reply
    if rewritten is not None:
        propagate_as(c, rewritten)
    return reply


@command("xtrim", -4, "write", keys=(1, 1, 1, "RW delete"),
         summary="Deletes messages from the beginning of a stream.",
         since="5.0.0",
         complexity="O(N), with N being the number of evicted entries. "
                    "Constant times are very small however, since entries "
                    "are organized in macro nodes containing multiple "
                    "entries that can be released with a single deallocation.",
         tips=_STREAM_TIP, **_G)
def xtrim(c, argv):
    args, _ = _parse_add_or_trim(c, argv, False)
    key = argv[1]
    stream = _stream_for_write(c, key)
    if stream is None:
        return 0
    deleted = _trim(stream, args)
    if deleted:
        if args.approx:
            rewritten = list(argv)
            _rewrite_trim(stream, args, rewritten)
            propagate_as(c, rewritten)
        c.server.keyspace.touch(key, deleted)
        notify(c, STREAM, b"xtrim", key)
    return deleted


# -- reading ------------------------------------------------------------------

def _xrange(c, argv, rev: bool):
    start_arg, end_arg = (argv[3], argv[2]) if rev else (argv[2], argv[3])
    start = _interval(start_arg, 0, True)
    end = _interval(end_arg, MAX64, False)
    count = -1
    j = 4
    while j < len(argv):
        if argv[j].lower() == b"count" and j + 1 < len(argv):
            count = max(_ll(argv[j + 1]), 0)
            j += 2
        else:
            raise CommandError(SYNTAX)
    stream = read(c, argv[1], Stream)
    if stream is None:
        return []
    if count == 0:
        return NULL_ARRAY
    return [_entry(sid, f) for sid, f in
            stream.range(start, end, max(count, 0), rev)]


@command("xrange", -4, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Return a range of elements in a stream, with IDs matching "
                 "the specified IDs interval", since="5.0.0",
         complexity="O(N) with N being the number of elements being returned. "
                    "If N is constant (e.g. always asking for the first 10 "
                    "elements with COUNT), you can consider it O(1).", **_G)
def xrange(c, argv):
    return _xrange(c, argv, False)


@command("xrevrange", -4, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Return a range of elements in a stream, with IDs matching "
                 "the specified IDs interval, in reverse order (from greater "
                 "to smaller IDs) compared to XRANGE", since="5.0.0",
         complexity="O(N) with N being the number of elements returned. If N "
                    "is constant (e.g. always asking for the first 10 "
                    "elements with COUNT), you can consider it O(1).", **_G)
def xrevrange(c, argv):
    return _xrange(c, argv, True)


@command("xlen", 2, "readonly fast", keys=(1, 1, 1, "RO"),
         summary="Return the number of entries in a stream", since="5.0.0",
         complexity="O(1)", **_G)
def xlen(c, argv):
    stream = read(c, argv[1], Stream)
    return 0 if stream is None else len(stream)


@command("xdel", -3, "write fast", keys=(1, 1, 1, "RW delete"),
         summary="Removes the specified entries from the stream. Returns the "
                 "number of items actually deleted, that may be different "
                 "from the number of IDs passed in case certain IDs do not "
                 "exist.", since="5.0.0",
         complexity="O(1) for each single item to delete in the stream, "
                    "regardless of the stream size.", **_G)
def xdel(c, argv):
    stream = _stream_for_write(c, argv[1])
    if stream is None:
        return 0
    ids = [_id(arg) for arg in argv[2:]]
    deleted = 0
    first_entry = False
    for sid in ids:
        if stream.delete(sid):
            if sid == stream.first_id:
                first_entry = True
            if sid > stream.max_deleted_id:
                stream.max_deleted_id = sid
            deleted += 1
    if deleted:
        if not len(stream):
            stream.first_id = MIN_ID
        elif first_entry:
            stream.first_id = stream.first_entry_id()
        c.server.keyspace.touch(argv[1], deleted)
        notify(c, STREAM, b"xdel", argv[1])
    return deleted


@command("xsetid", -3, "write denyoom fast", keys=(1, 1, 1, "RW update"),
         summary="An internal command for replicating stream values",
         since="5.0.0", complexity="O(1)",
         history=(("7.0.0", "Added the `entries_added` and "
                            "`max_deleted_entry_id` arguments."),), **_G)
def xsetid(c, argv):
    sid = _id(argv[2])
    entries_added = -1
    max_xdel = MIN_ID
    i = 3
    while i < len(argv):
        more = len(argv) - 1 - i
        opt = argv[i].lower()
        if opt == b"entriesadded" and more:
            entries_added = _ll(argv[i + 1])
            if entries_added < 0:
                raise CommandError("ERR entries_added must be positive")
        elif opt == b"maxdeletedid" and more:
            max_xdel = _id(argv[i + 1])
            if sid < max_xdel:
                raise CommandError("ERR The ID specified in XSETID is smaller "
                                   "than the provided max_deleted_entry_id")
        else:
            raise CommandError(SYNTAX)
        i += 2
    stream = _stream_for_write(c, argv[1])
    if stream is None:
        raise CommandError("ERR no such key")
    if len(stream):
        if sid < stream.last_valid_id():
            raise CommandError("ERR The ID specified in XSETID is smaller "
                               "than the target stream top item")
        if entries_added != -1 and len(stream) > entries_added:
            raise CommandError("ERR The entries_added specified in XSETID is "
                               "smaller than the target stream length")
    stream.last_id = sid
    if entries_added != -1:
        stream.entries_added = entries_added
    if max_xdel != MIN_ID:
        stream.max_deleted_id = max_xdel
    c.server.keyspace.touch(argv[1])
    notify(c, STREAM, b"xsetid", argv[1])
    return OK


# -- XREAD / XREADGROUP -------------------------------------------------------

def _xclaim_op(key, group_name, sid, nack, group):
    return [b"XCLAIM", key, group_name, nack.consumer.name, b"0",
            format_id(sid), b"TIME", b"%d" % nack.delivery_time,
            b"RETRYCOUNT", b"%d" % nack.delivery_count, b"FORCE", b"JUSTID",
            b"LASTID", format_id(group.last_id)]


def _setid_op(key, group_name, group):
    return [b"XGROUP", b"SETID", key, group_name, format_id(group.last_id),
            b"ENTRIESREAD", b"%d" % group.entries_read]


def _serve_group(c, key, stream, group, group_name, consumer, start, count,
                 noack):
    """streamReplyWithRange with a group: new entries for a consumer."""
    now = _now(c)
    out = []
    moved = False
    for sid, fields in stream.range(start, MAX_ID, count):
        if stream.deliver(group, sid) and noack:
            moved = True
        out.append(_entry(sid, fields))
        if not noack:
            nack = group.pel.get(sid)
            if nack is None:
                nack = group.pel[sid] = NACK(consumer, now)
                consumer.pel[sid] = nack
            else:
                if nack.consumer is not None:
                    nack.consumer.pel.pop(sid, None)
                nack.consumer = consumer
                nack.delivery_time = now
                nack.delivery_count = 1
                consumer.pel[sid] = nack
            also_propagate(c, _xclaim_op(key, group_name, sid, nack, group))
    if moved:
        also_propagate(c, _setid_op(key, group_name, group))
    return out


def _serve_history(c, stream, consumer, start, count):
    """streamReplyWithRangeFromConsumerPEL: the consumer's own pending."""
    now = _now(c)
    out = []
    for sid in consumer.pel.irange(start, MAX_ID):
        if count and len(out) >= count:
            break
        fields = stream.get(sid)
        if fields is None:
            out.append([format_id(sid), NULL_ARRAY])
        else:
            nack = consumer.pel[sid]
            nack.delivery_time = now
            nack.delivery_count += 1
            out.append(_entry(sid, fields))
    return out


class _ReadArgs:
    __slots__ = ("timeout", "count", "streams_at", "nstreams", "group",
                 "consumer", "noack")


def _parse_read(c, argv, xreadgroup: bool):
    a = _ReadArgs()
    a.timeout = -1
    a.count = 0
    a.streams_at = 0
    a.nstreams = 0
    a.group = a.consumer = None
    a.noack = False
    i = 1
    argc = len(argv)
    while i < argc:
        more = argc - i - 1
        opt = argv[i].lower()
        if opt == b"block" and more:
            if c.kind == "script":
                raise CommandError("ERR %s command is not allowed with BLOCK "
                                   "option from scripts" % argv[0].decode())
            i += 1
            a.timeout = parse_int(
                argv[i], "ERR timeout is not an integer or out of range")
            if a.timeout < 0:
                raise CommandError("ERR timeout is negative")
        elif opt == b"count" and more:
            i += 1
            a.count = max(_ll(argv[i]), 0)
        elif opt == b"streams" and more:
            a.streams_at = i + 1
            n = argc - a.streams_at
            if n % 2:
                raise CommandError(
                    "ERR Unbalanced XREAD list of streams: for each stream "
                    "key an ID or '$' must be specified.")
            a.nstreams = n // 2
            break
        elif opt == b"group" and more >= 2:
            if not xreadgroup:
                raise CommandError("ERR The GROUP option is only supported "
                                   "by XREADGROUP. You called XREAD instead.")
            a.group, a.consumer = argv[i + 1], argv[i + 2]
            i += 2
        elif opt == b"noack":
            if not xreadgroup:
                raise CommandError("ERR The NOACK option is only supported "
                                   "by XREADGROUP. You called XREAD instead.")
            a.noack = True
        else:
            raise CommandError(SYNTAX)
        i += 1
    if a.streams_at == 0:
        raise CommandError(SYNTAX)
    if xreadgroup and a.group is None:
        raise CommandError("ERR Missing GROUP option for XREADGROUP")
    return a


def _lookup_stream(c, key):
    # for_write: XACK, XCLAIM, XAUTOCLAIM and XREADGROUP change the stream's
    # groups in place (a running snapshot saves the slot first).
    value = c.server.keyspace.for_write(key)
    if value is not None and value.__class__ is not Stream:
        raise CommandError(WRONGTYPE)
    return value


def _effects_only(handler):
    """For commands propagated only through also_propagate (Redis's
    preventCommandPropagation): the own argv is dropped when it wrote."""
    def run(c, argv, *rest):
        ks = c.server.keyspace
        dirty = ks.dirty
        try:
            return handler(c, argv, *rest)
        finally:
            if ks.dirty != dirty:
                no_propagation(c)
    run.__name__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run


@_effects_only
def _xread(c, argv, xreadgroup: bool):
    blocking = c.server.blocking
    woken = blocking.woken_by(c)
    if woken is not None:
        return _serve_woken(c, argv, xreadgroup, woken)
    a = _parse_read(c, argv, xreadgroup)
    keys = argv[a.streams_at:a.streams_at + a.nstreams]
    id_args = argv[a.streams_at + a.nstreams:]
    ids = []
    groups = []
    for key, arg in zip(keys, id_args):
        stream = _lookup_stream(c, key)
        group = None
        if a.group is not None:
            group = stream.groups.get(a.group) if stream is not None else None
            if group is None:
                raise CommandError(
                    "NOGROUP No such key '%s' or consumer group '%s' in "
                    "XREADGROUP with GROUP option" % (_text(key),
                                                      _text(a.group)))
        groups.append(group)
        if arg == b"$":
            if xreadgroup:
                raise CommandError(
                    "ERR The $ ID is meaningless in the context of "
                    "XREADGROUP: you want to read the history of this "
                    "consumer by specifying a proper ID, or use the > ID to "
                    "get new messages. The $ ID would just return an empty "
                    "result set.")
            ids.append(stream.last_id if stream is not None else MIN_ID)
        elif arg == b">":
            if not xreadgroup:
                raise CommandError(
                    "ERR The > ID can be specified only when calling "
                    "XREADGROUP using the GROUP <group> <consumer> option.")
            ids.append(None)
        else:
            ids.append(_id(arg))
    served = []
    for key, gt, group in zip(keys, ids, groups):
        stream = c.server.keyspace.for_write(key)
        if stream is None:
            continue
        history = False
        if group is not None:
            if gt is not None:
                history = True
            elif not (len(stream) and stream.last_valid_id() > group.last_id):
                continue
        elif not (len(stream) and stream.last_valid_id() > gt):
            continue
        served.append((key, _read_one(c, key, stream, gt, group, a, history,
                                      a.count)))
    if served:
        if c.resp3:
            return Map(served)
        return [[key, entries] for key, entries in served]
    if a.timeout != -1:
        stored = list(argv)
        for n, gt in enumerate(ids):
            if gt is not None:
                stored[a.streams_at + a.nstreams + n] = format_id(gt)
        server = c.server
        return blocking.block(c, keys, a.timeout, server.table.get(
            "xreadgroup" if xreadgroup else "xread"), stored, NULL_ARRAY)
    return NULL_ARRAY


def _read_one(c, key, stream, gt, group, a, history, count):
    """The entries one stream serves (the consumer created if needed)."""
    if group is None:
        start = incr_id(gt)
        if start is None:
            return []
        return [_entry(sid, f) for sid, f in stream.range(start, MAX_ID,
                                                            count)]
    now = _now(c)
    consumer = group.consumer(a.consumer, now)
    ks = c.server.keyspace
    if consumer is None:
        consumer = group.create_consumer(a.consumer, now)
        ks.touch(key)
        notify(c, STREAM, b"xgroup-createconsumer", key)
        if a.noack:
            also_propagate(c, [b"XGROUP", b"CREATECONSUMER", key, a.group,
                               a.consumer])
    if history:
        start = incr_id(gt)
        out = [] if start is None else \
            _serve_history(c, stream, consumer, start, count)
    else:
        start = incr_id(group.last_id)
        out = [] if start is None else \
            _serve_group(c, key, stream, group, a.group, consumer, start,
                         count, a.noack)
    ks.touch(key)
    return out


def _serve_woken(c, argv, xreadgroup, key):
    """A blocked XREAD[GROUP] retried because key was written: serve that
    key alone (serveClientsBlockedOnStreamKey), or keep waiting."""
    blocking = c.server.blocking
    a = _parse_read(c, argv, xreadgroup)
    keys = argv[a.streams_at:a.streams_at + a.nstreams]
    position = keys.index(key)
    value = c.server.keyspace.for_write(key)
    if value is None or value.__class__ is not Stream:
        if xreadgroup:
            # unblockDeletedStreamReadgroupClients
            raise CommandError("UNBLOCKED the stream key no longer exists")
        return blocking.block(c, (), 0, None, argv, NULL_ARRAY)
    stream = value
    count = a.count or XREAD_BLOCKED_DEFAULT_COUNT
    group = None
    if xreadgroup:
        group = stream.groups.get(a.group)
        if group is None:
            raise CommandError("NOGROUP the consumer group this client was "
                               "blocked on no longer exists")
        gt = group.last_id
    else:
        gt = _id(argv[a.streams_at + a.nstreams + position])
    if not stream.last_id > gt:
        return blocking.block(c, (), 0, None, argv, NULL_ARRAY)
    entries = _read_one(c, key, stream, gt, group, a, False, count)
    if c.resp3:
        return Map([(key, entries)])
    return [[key, entries]]


_XREAD_SPECS = [KeySpec(flags=("RO", "access"), keyword=b"STREAMS",
                        startfrom=1, lastkey=-1, keystep=1, limit=2)]
_XREADGROUP_SPECS = [KeySpec(flags=("RO", "access"), keyword=b"STREAMS",
                             startfrom=4, lastkey=-1, keystep=1, limit=2)]


def _stream_keys(argv, startfrom):
    """xreadGetKeys: the keys after STREAMS (the first one), half of what
    follows it."""
    for i in range(startfrom, len(argv)):
        if argv[i].lower() == b"streams":
            rest = len(argv) - i - 1
            if rest == 0 or rest % 2:
                return []
            return list(range(i + 1, i + 1 + rest // 2))
    return []


@command("xread", -4, "readonly blocking", specs=_XREAD_SPECS,
         get_keys=lambda argv: _stream_keys(argv, 1),
         summary="Return never seen elements in multiple streams, with IDs "
                 "greater than the ones reported by the caller for each "
                 "stream. Can block.", since="5.0.0",
         complexity="For each stream mentioned: O(N) with N being the number "
                    "of elements being returned, it means that XREAD-ing "
                    "with a fixed COUNT is O(1). Note that when the BLOCK "
                    "option is used, XADD will pay O(M) time in order to "
                    "serve the M clients blocked on the stream getting new "
                    "data.", **_G)
def xread(c, argv):
    return _xread(c, argv, False)


@command("xreadgroup", -7, "write blocking", specs=_XREADGROUP_SPECS,
         get_keys=lambda argv: _stream_keys(argv, 4),
         summary="Return new entries from a stream using a consumer group, "
                 "or access the history of the pending entries for a given "
                 "consumer. Can block.", since="5.0.0",
         complexity="For each stream mentioned: O(M) with M being the number "
                    "of elements returned. If M is constant (e.g. always "
                    "asking for the first 10 elements with COUNT), you can "
                    "consider it O(1). On the other side when XREADGROUP "
                    "blocks, XADD will pay the O(N) time in order to serve "
                    "the N clients blocked on the stream getting new data.",
         **_G)
def xreadgroup(c, argv):
    return _xread(c, argv, True)


# -- XGROUP -------------------------------------------------------------------

container("xgroup", "stream", "A container for consumer groups commands",
          since="5.0.0")
_SUB = dict(parent="xgroup", **_G)

_XGROUP_HELP = [
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
]
xgroup_help = help_subcommand(_XGROUP_HELP, **_SUB)


def _xgroup_prepare(c, argv, needs_group: bool):
    """xgroupCommand's shared head: options, key and group lookups ->
    (stream, group, mkstream, entries_read)."""
    sub = argv[1].lower()
    create, setid = sub == b"create", sub == b"setid"
    mkstream = False
    entries_read = INVALID_ENTRIES_READ
    i = 5
    while i < len(argv):
        opt = argv[i].lower()
        if create and opt == b"mkstream":
            mkstream = True
            i += 1
        elif (create or setid) and opt == b"entriesread" and \
                i + 1 < len(argv):
            entries_read = _ll(argv[i + 1])
            if entries_read < 0 and entries_read != INVALID_ENTRIES_READ:
                raise CommandError("ERR value for ENTRIESREAD must be "
                                   "positive or -1")
            i += 2
        else:
            raise subcommand_syntax_error(argv)
    stream = _stream_for_write(c, argv[2])
    group = None
    if not mkstream:
        if stream is None:
            raise CommandError(
                "ERR The XGROUP subcommand requires the key to exist. Note "
                "that for CREATE you may want to use the MKSTREAM option to "
                "create an empty stream automatically.")
        group = stream.groups.get(argv[3])
        if group is None and needs_group:
            raise CommandError(
                "NOGROUP No such consumer group '%s' for key name '%s'"
                % (_text(argv[3]), _text(argv[2])))
    return stream, group, mkstream, entries_read


@command("create", -5, "write denyoom", keys=(2, 2, 1, "RW insert"),
         summary="Create a consumer group.", since="5.0.0",
         complexity="O(1)",
         history=(("7.0.0", "Added the `entries_read` named argument."),),
         **_SUB)
def xgroup_create(c, argv):
    stream, _, mkstream, entries_read = _xgroup_prepare(c, argv, False)
    if len(argv) > 8:
        raise subcommand_syntax_error(argv)
    if argv[4] == b"$":
        sid = stream.last_id if stream is not None else MIN_ID
    else:
        sid = _id(argv[4])
    ks = c.server.keyspace
    if stream is None:
        stream = Stream()
        ks.add(argv[2], stream)
    if argv[3] in stream.groups:
        raise CommandError("BUSYGROUP Consumer Group name already exists")
    stream.groups[argv[3]] = Group(sid, entries_read)
    ks.touch(argv[2])
    notify(c, STREAM, b"xgroup-create", argv[2])
    return OK


@command("setid", -5, "write", keys=(2, 2, 1, "RW update"),
         summary="Set a consumer group to an arbitrary last delivered ID "
                 "value.", since="5.0.0", complexity="O(1)",
         history=(("7.0.0", "Added the optional `entries_read` argument."),),
         **_SUB)
def xgroup_setid(c, argv):
    if len(argv) not in (5, 7):
        raise subcommand_syntax_error(argv)
    stream, group, _, entries_read = _xgroup_prepare(c, argv, True)
    if argv[4] == b"$":
        sid = stream.last_id
    else:
        sid = _id(argv[4], strict=False)
    group.last_id = sid
    group.entries_read = entries_read
    c.server.keyspace.touch(argv[2])
    notify(c, STREAM, b"xgroup-setid", argv[2])
    return OK


@command("destroy", 4, "write", keys=(2, 2, 1, "RW delete"),
         summary="Destroy a consumer group.", since="5.0.0",
         complexity="O(N) where N is the number of entries in the group's "
                    "pending entries list (PEL).", **_SUB)
def xgroup_destroy(c, argv):
    stream, group, _, _ = _xgroup_prepare(c, argv, False)
    if group is None:
        return 0
    del stream.groups[argv[3]]
    c.server.keyspace.touch(argv[2])
    notify(c, STREAM, b"xgroup-destroy", argv[2])
    return 1


@command("createconsumer", 5, "write denyoom", keys=(2, 2, 1, "RW insert"),
         summary="Create a consumer in a consumer group.", since="6.2.0",
         complexity="O(1)", **_SUB)
def xgroup_createconsumer(c, argv):
    _, group, _, _ = _xgroup_prepare(c, argv, True)
    created = group.create_consumer(argv[4], _now(c))
    if created is None:
        return 0
    c.server.keyspace.touch(argv[2])
    notify(c, STREAM, b"xgroup-createconsumer", argv[2])
    return 1


@command("delconsumer", 5, "write", keys=(2, 2, 1, "RW delete"),
         summary="Delete a consumer from a consumer group.", since="5.0.0",
         complexity="O(1)", **_SUB)
def xgroup_delconsumer(c, argv):
    _, group, _, _ = _xgroup_prepare(c, argv, True)
    consumer = group.consumer(argv[4], 0, refresh=False)
    if consumer is None:
        return 0
    pending = group.delete_consumer(consumer)
    c.server.keyspace.touch(argv[2])
    notify(c, STREAM, b"xgroup-delconsumer", argv[2])
    return pending


# -- XACK / XPENDING / XCLAIM / XAUTOCLAIM ------------------------------------

@command("xack", -4, "write fast", keys=(1, 1, 1, "RW update"),
         summary="Marks a pending message as correctly processed, "
                 "effectively removing it from the pending entries list of "
                 "the consumer group. Return value of the command is the "
                 "number of messages successfully acknowledged, that is, the "
                 "IDs we were actually able to resolve in the PEL.",
         since="5.0.0",
         complexity="O(1) for each message ID processed.", **_G)
def xack(c, argv):
    stream = _lookup_stream(c, argv[1])
    group = stream.groups.get(argv[2]) if stream is not None else None
    if group is None:
        return 0
    ids = [_id(arg) for arg in argv[3:]]
    acked = sum(1 for sid in ids if group.ack(sid))
    if acked:
        c.server.keyspace.touch(argv[1], acked)
    return acked


@command("xpending", -3, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Return information and entries from a stream consumer "
                 "group pending entries list, that are messages fetched but "
                 "never acknowledged.", since="5.0.0",
         complexity="O(N) with N being the number of elements returned, so "
                    "asking for a small fixed number of entries per call is "
                    "O(1). O(M), where M is the total number of entries "
                    "scanned when used with the IDLE filter. When the command "
                    "returns just the summary and the list of consumers is "
                    "small, it runs in O(1) time; otherwise, an additional "
                    "O(N) time for iterating every consumer.",
         history=(("6.2.0", "Added the `IDLE` option and exclusive range "
                            "intervals."),),
         tips=_STREAM_TIP, **_G)
def xpending(c, argv):
    argc = len(argv)
    if argc != 3 and not 6 <= argc <= 9:
        raise CommandError(SYNTAX)
    minidle = 0
    consumer_name = None
    if argc >= 6:
        at = 3
        if argv[3].lower() == b"idle":
            minidle = _ll(argv[4])
            if argc < 8:
                raise CommandError(SYNTAX)
            at = 5
        count = max(_ll(argv[at + 2]), 0)
        start = _interval(argv[at], 0, True)
        end = _interval(argv[at + 1], MAX64, False)
        if at + 3 < argc:
            consumer_name = argv[at + 3]
    stream = _lookup_stream(c, argv[1])
    group = stream.groups.get(argv[2]) if stream is not None else None
    if group is None:
        raise CommandError(_nogroup(argv[1], argv[2]))
    if argc == 3:
        if not group.pel:
            return [0, None, None, NULL_ARRAY]
        owners = [[cons.name, b"%d" % len(cons.pel)]
                  for cons in group.sorted_consumers() if cons.pel]
        return [len(group.pel), format_id(group.pel.peekitem(0)[0]),
                format_id(group.pel.peekitem(-1)[0]), owners]
    pel = group.pel
    if consumer_name is not None:
        consumer = group.consumer(consumer_name, 0, refresh=False)
        if consumer is None:
            return []
        pel = consumer.pel
    now = _now(c)
    out = []
    if start > end:
        return out
    for sid in pel.irange(start, end):
        if not count:
            break
        nack = pel[sid]
        if minidle and now - nack.delivery_time < minidle:
            continue
        count -= 1
        out.append([format_id(sid), nack.consumer.name,
                    max(now - nack.delivery_time, 0), nack.delivery_count])
    return out


def _claim_nack(c, group, consumer_holder, name, key, sid, nack):
    """Move nack to the named consumer (created on first use)."""
    consumer = consumer_holder[0]
    if consumer is None:
        now = _now(c)
        consumer = group.consumer(name, now)
        if consumer is None:
            consumer = group.create_consumer(name, now)
            notify(c, STREAM, b"xgroup-createconsumer", key)
        consumer_holder[0] = consumer
    if nack.consumer is not consumer and nack.consumer is not None:
        nack.consumer.pel.pop(sid, None)
    return consumer


@command("xclaim", -6, "write fast", keys=(1, 1, 1, "RW update"),
         summary="Changes (or acquires) ownership of a message in a consumer "
                 "group, as if the message was delivered to the specified "
                 "consumer.", since="5.0.0",
         complexity="O(log N) with N being the number of messages in the PEL "
                    "of the consumer group.", tips=_STREAM_TIP, **_G)
@_effects_only
def xclaim(c, argv):
    key, group_name, name = argv[1], argv[2], argv[3]
    stream = _lookup_stream(c, key)
    group = stream.groups.get(group_name) if stream is not None else None
    if group is None:
        raise CommandError(_nogroup(key, group_name))
    minidle = max(_ll(argv[4], "ERR Invalid min-idle-time argument for "
                               "XCLAIM"), 0)
    ids = []
    j = 5
    while j < len(argv):
        try:
            ids.append(parse_id(argv[j], 0, True)[0])
        except StreamIDError:
            break
        j += 1
    id_args = argv[5:j]
    now = _now(c)
    retrycount = -1
    deliverytime = -1
    force = justid = False
    last_id = MIN_ID
    while j < len(argv):
        more = len(argv) - 1 - j
        opt = argv[j].lower()
        if opt == b"force":
            force = True
        elif opt == b"justid":
            justid = True
        elif opt == b"idle" and more:
            j += 1
            deliverytime = now - _ll(argv[j], "ERR Invalid IDLE option "
                                              "argument for XCLAIM")
        elif opt == b"time" and more:
            j += 1
            deliverytime = _ll(argv[j], "ERR Invalid TIME option argument "
                                        "for XCLAIM")
        elif opt == b"retrycount" and more:
            j += 1
            retrycount = _ll(argv[j], "ERR Invalid RETRYCOUNT option "
                                      "argument for XCLAIM")
        elif opt == b"lastid" and more:
            j += 1
            last_id = _id(argv[j])
        else:
            raise CommandError("ERR Unrecognized XCLAIM option '%s'"
                               % _text(argv[j]))
        j += 1
    ks = c.server.keyspace
    propagate_last_id = False
    if last_id > group.last_id:
        group.last_id = last_id
        propagate_last_id = True
    if deliverytime != -1:
        if deliverytime < 0 or deliverytime > now:
            deliverytime = now
    else:
        deliverytime = now
    holder = [None]
    out = []
    for sid, arg in zip(ids, id_args):
        nack = group.pel.get(sid)
        fields = stream.get(sid)
        if fields is None:
            if nack is not None:
                also_propagate(c, _xclaim_op(key, group_name, sid, nack,
                                             group))
                propagate_last_id = False
                ks.touch(key)
                group.ack(sid)
            continue
        if force and nack is None:
            nack = group.pel[sid] = NACK(None, now)
        if nack is None:
            continue
        if nack.consumer is not None and minidle and \
                now - nack.delivery_time < minidle:
            continue
        consumer = _claim_nack(c, group, holder, name, key, sid, nack)
        nack.delivery_time = deliverytime
        if retrycount >= 0:
            nack.delivery_count = retrycount
        elif not justid:
            nack.delivery_count += 1
        if nack.consumer is not consumer:
            consumer.pel[sid] = nack
            nack.consumer = consumer
        out.append(format_id(sid) if justid else _entry(sid, fields))
        also_propagate(c, _xclaim_op(key, group_name, sid, nack, group))
        propagate_last_id = False
        ks.touch(key)
    if propagate_last_id:
        also_propagate(c, _setid_op(key, group_name, group))
        ks.touch(key)
    if holder[0] is not None:
        ks.touch(key)
    return out


@command("xautoclaim", -6, "write fast", keys=(1, 1, 1, "RW delete"),
         summary="Changes (or acquires) ownership of messages in a consumer "
                 "group, as if the messages were delivered to the specified "
                 "consumer.", since="6.2.0",
         complexity="O(1) if COUNT is small.",
         history=(("7.0.0", "Added an element to the reply array, containing "
                            "deleted entries the command cleared from the "
                            "PEL"),),
         tips=_STREAM_TIP, **_G)
@_effects_only
def xautoclaim(c, argv):
    key, group_name, name = argv[1], argv[2], argv[3]
    minidle = max(_ll(argv[4], "ERR Invalid min-idle-time argument for "
                               "XAUTOCLAIM"), 0)
    start = _interval(argv[5], 0, True)
    count = 100
    justid = False
    j = 6
    while j < len(argv):
        more = len(argv) - 1 - j
        opt = argv[j].lower()
        if opt == b"count" and more:
            count = parse_ranged(argv[j + 1], 1, LLONG_MAX // 16,
                                 "ERR COUNT must be > 0")
            j += 1
        elif opt == b"justid":
            justid = True
        else:
            raise CommandError(SYNTAX)
        j += 1
    stream = _lookup_stream(c, key)
    group = stream.groups.get(group_name) if stream is not None else None
    if group is None:
        raise CommandError(_nogroup(key, group_name))
    ks = c.server.keyspace
    attempts = count * 10
    now = _now(c)
    holder = [None]
    claimed = []
    deleted = []
    pel = group.pel
    cursor = None        # the last PEL key processed

    def following():
        if cursor is None:
            return next(iter(pel.irange(start, MAX_ID)), None)
        return next(iter(pel.irange(cursor, MAX_ID,
                                    inclusive=(False, True))), None)
    while attempts and count:
        attempts -= 1
        sid = following()
        if sid is None:
            break
        cursor = sid
        nack = pel[sid]
        fields = stream.get(sid)
        if fields is None:
            also_propagate(c, _xclaim_op(key, group_name, sid, nack, group))
            ks.touch(key)
            group.ack(sid)
            deleted.append(format_id(sid))
            count -= 1
            continue
        if minidle and now - nack.delivery_time < minidle:
            continue
        consumer = _claim_nack(c, group, holder, name, key, sid, nack)
        nack.delivery_time = now
        if not justid:
            nack.delivery_count += 1
        if nack.consumer is not consumer:
            consumer.pel[sid] = nack
            nack.consumer = consumer
        claimed.append(format_id(sid) if justid else _entry(sid, fields))
        count -= 1
        also_propagate(c, _xclaim_op(key, group_name, sid, nack, group))
        ks.touch(key)
    nxt = following()
    if holder[0] is not None:
        ks.touch(key)
    return [format_id(nxt if nxt is not None else MIN_ID), claimed, deleted]


# -- XINFO --------------------------------------------------------------------

container("xinfo", "stream", "A container for stream introspection commands",
          since="5.0.0")
_ISUB = dict(parent="xinfo", **_G)
xinfo_help = help_subcommand([
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
], **_ISUB)


def _xinfo_stream_value(c, key):
    stream = _lookup_stream(c, key)
    if stream is None:
        raise CommandError("ERR no such key")
    return stream


def _entries_read(group):
    return None if group.entries_read == INVALID_ENTRIES_READ \
        else group.entries_read


def _rax_nodes(stream) -> int:
    """radix-tree-nodes: the nodes of the radix tree Redis would hold for
    the node keys (16-byte big-endian IDs), counted on the canonical
    compressed trie (compressed runs, branching nodes, key leaves)."""
    keys = [ms.to_bytes(8, "big") + seq.to_bytes(8, "big")
            for ms, seq in stream.nodes.keys()]
    if not keys:
        return 1
    return _trie_nodes(keys, 0, True)


def _trie_nodes(keys, depth, may_compress) -> int:
    if depth == 16:
        return 1                      # the (empty) key node
    first, last = keys[0], keys[-1]   # sorted: the common prefix is theirs
    common = 0
    while depth + common < 16 and \
            first[depth + common] == last[depth + common]:
        common += 1
    if common and may_compress:
        return 1 + _trie_nodes(keys, depth + common, False)
    if common:
        # After a branch char a compressed run starts a new node.
        return _trie_nodes(keys, depth, True)
    total = 1                         # a branching node
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i][depth] != keys[start][depth]:
            total += _trie_nodes(keys[start:i], depth + 1, True)
            start = i
    return total


@command("stream", -3, "readonly", keys=(2, 2, 1, "RO access"),
         summary="Get information about a stream", since="5.0.0",
         complexity="O(1)",
         history=(("6.0.0", "Added the `FULL` modifier."),
                  ("7.0.0", "Added the `max-deleted-entry-id`, "
                            "`entries-added`, `recorded-first-entry-id`, "
                            "`entries-read` and `lag` fields")), **_ISUB)
def xinfo_stream(c, argv):
    full = False
    count = 10
    opts = argv[3:]
    if opts:
        if len(opts) not in (1, 3) or opts[0].lower() != b"full":
            raise subcommand_syntax_error(argv)
        full = True
        if len(opts) == 3:
            if opts[1].lower() != b"count":
                raise subcommand_syntax_error(argv)
            count = _ll(opts[2])
            if count < 0:
                count = 10
    stream = _xinfo_stream_value(c, argv[2])
    pairs = [(b"length", len(stream)),
             (b"radix-tree-keys", len(stream.nodes)),
             (b"radix-tree-nodes", _rax_nodes(stream)),
             (b"last-generated-id", format_id(stream.last_id)),
             (b"max-deleted-entry-id", format_id(stream.max_deleted_id)),
             (b"entries-added", stream.entries_added),
             (b"recorded-first-entry-id", format_id(stream.first_id))]
    if not full:
        first = stream.range(MIN_ID, MAX_ID, 1)
        last = stream.range(MIN_ID, MAX_ID, 1, rev=True)
        pairs += [(b"groups", len(stream.groups)),
                  (b"first-entry", _entry(*first[0]) if first else None),
                  (b"last-entry", _entry(*last[0]) if last else None)]
        return Map(pairs)
    pairs.append((b"entries", [_entry(sid, f) for sid, f in
                               stream.range(MIN_ID, MAX_ID, count)]))
    groups = []
    for name, group in stream.sorted_groups():
        pel = []
        for sid in group.pel:
            if count and len(pel) >= count:
                break
            nack = group.pel[sid]
            pel.append([format_id(sid), nack.consumer.name,
                        nack.delivery_time, nack.delivery_count])
        consumers = []
        for consumer in group.sorted_consumers():
            cpel = []
            for sid in consumer.pel:
                if count and len(cpel) >= count:
                    break
                nack = consumer.pel[sid]
                cpel.append([format_id(sid), nack.delivery_time,
                             nack.delivery_count])
            consumers.append(Map([(b"name", consumer.name),
                                  (b"seen-time", consumer.seen_time),
                                  (b"pel-count", len(consumer.pel)),
                                  (b"pending", cpel)]))
        groups.append(Map([(b"name", name),
                           (b"last-delivered-id", format_id(group.last_id)),
                           (b"entries-read", _entries_read(group)),
                           (b"lag", stream.lag(group)),
                           (b"pel-count", len(group.pel)),
                           (b"pending", pel),
                           (b"consumers", consumers)]))
    pairs.append((b"groups", groups))
    return Map(pairs)


@command("groups", 3, "readonly", keys=(2, 2, 1, "RO access"),
         summary="List the consumer groups of a stream", since="5.0.0",
         complexity="O(1)",
         history=(("7.0.0", "Added the `entries-read` and `lag` fields"),),
         **_ISUB)
def xinfo_groups(c, argv):
    stream = _xinfo_stream_value(c, argv[2])
    return [Map([(b"name", name), (b"consumers", len(group.consumers)),
                 (b"pending", len(group.pel)),
                 (b"last-delivered-id", format_id(group.last_id)),
                 (b"entries-read", _entries_read(group)),
                 (b"lag", stream.lag(group))])
            for name, group in stream.sorted_groups()]


@command("consumers", 4, "readonly", keys=(2, 2, 1, "RO access"),
         summary="List the consumers in a consumer group", since="5.0.0",
         complexity="O(1)", tips=_STREAM_TIP, **_ISUB)
def xinfo_consumers(c, argv):
    stream = _xinfo_stream_value(c, argv[2])
    group = stream.groups.get(argv[3])
    if group is None:
        raise CommandError(
            "NOGROUP No such consumer group '%s' for key name '%s'"
            % (_text(argv[3]), _text(argv[2])))
    now = _now(c)
    return [Map([(b"name", cons.name), (b"pending", len(cons.pel)),
                 (b"idle", max(now - cons.seen_time, 0))])
            for cons in group.sorted_consumers()]

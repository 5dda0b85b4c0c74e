"""The replica side of the replication link, sans-IO (Redis's
syncWithMaster / readSyncBulkPayload).

``Handshake`` is fed the bytes the master sends and returns events; it
never touches a socket or a clock:

    link = Handshake(replid, offset, port, auth=..., ip=None)
    link.start()            -> [("send", b"*1\\r\\n$4\\r\\nPING\\r\\n")]
    link.receive(data)      -> events

Events, in order:
    ("send", bytes)                 write to the master
    ("error", text)                 give up on this connection (log text)
    ("retry", text)                 the master can't sync now (-LOADING,
                                    -NOMASTERLINK): reconnect later
    ("fullresync", replid, offset)  a full sync follows
    ("continue", replid_or_None)    partial: the stream follows
    ("rdb_start", size_or_None)     the RDB payload (None: EOF-marked)
    ("rdb", bytes)                  a piece of the RDB
    ("rdb_end",)                    the whole RDB was received
    ("stream", bytes)               replication stream bytes

The steps, as Redis 7.0: PING (+PONG, or an authentication error, is
fine), then AUTH (masterauth/masteruser), REPLCONF listening-port,
REPLCONF ip-address (replica-announce-ip), REPLCONF capa eof capa psync2
sent together and their replies read in order, then PSYNC replid offset.
"""
from __future__ import annotations

from rcluster.replication.backlog import encode_command

EOF_MARK_SIZE = 40
# Our REPLCONF capa: CLUSTER SETSLOT may come down the stream (Valkey 8's
# replicated slot states).  A redis-server 7.0 replica doesn't announce it,
# and would answer SETSLOT from its master with an error.
SETSLOT_CAPA = "rcluster-setslot"
MAX_LINE = 64 * 1024           # a reply line longer than this is bogus

PONG = "pong"
AUTH = "auth"
PORT = "port"
IP = "ip"
CAPA = "capa"
PSYNC = "psync"
BULK = "bulk"                  # waiting for the $<len> / $EOF: line
PAYLOAD = "payload"
STREAM = "stream"
DEAD = "dead"


class Handshake:
    def __init__(self, replid: str | None, offset: int, port: int,
                 auth=None, ip: str | None = None, failover=False):
        self.replid = replid
        self.failover = failover       # PSYNC ... FAILOVER (FAILOVER cmd)
        self.offset = offset           # PSYNC's offset (processed + 1)
        self.port = port
        self.auth = auth               # (user or None, password) or None
        self.ip = ip
        self.state = None
        self.buf = b""
        self.expect: list = []         # replies still due, in order
        self.size = None               # payload size ($<len>)
        self.left = 0
        self.mark = None               # EOF mark (diskless)
        self.tail = b""                # last bytes that may be the mark
        self.transfer_read = 0

    # -- entry points ---------------------------------------------------------
    def start(self) -> list:
        self.state = PONG
        return [("send", encode_command([b"PING"]))]

    def receive(self, data: bytes) -> list:
        events = []
        if self.state == STREAM:
            events.append(("stream", data))
            return events
        if self.state == PAYLOAD:
            self._payload(data, events)
            return events
        self.buf += data
        while self.state not in (STREAM, PAYLOAD, DEAD):
            line = self._line()
            if line is None:
                if len(self.buf) > MAX_LINE:
                    self._fail(events, "error", "Master sent a reply line "
                               "longer than %d bytes" % MAX_LINE)
                break
            self._step(line, events)
        if self.state in (PAYLOAD, STREAM) and self.buf:
            rest, self.buf = self.buf, b""
            if self.state == PAYLOAD:
                self._payload(rest, events)
            else:
                events.append(("stream", rest))
        return events

    # -- lines ----------------------------------------------------------------
    def _line(self):
        end = self.buf.find(b"\n")
        if end < 0:
            return None
        line = self.buf[:end]
        self.buf = self.buf[end + 1:]
        if line.endswith(b"\r"):
            line = line[:-1]
        return line.decode("utf-8", "replace")

    def _fail(self, events, kind, text):
        self.state = DEAD
        events.append((kind, text))

    def _step(self, line: str, events):
        state = self.state
        if state == PONG:
            if line == "":
                return
            if line.startswith("-") and not line.startswith(
                    ("-NOAUTH", "-NOPERM", "-ERR operation not permitted")):
                self._fail(events, "error",
                           "Error reply to PING from master: '%s'" % line)
                return
            self._send_handshake(events)
        elif state == AUTH:
            if line.startswith("-"):
                self._fail(events, "error",
                           "Unable to AUTH to MASTER: %s" % line)
                return
            self._next(events)
        elif state in (PORT, IP, CAPA):
            # Errors here are not critical (old masters), as Redis.
            self._next(events)
        elif state == PSYNC:
            self._psync_reply(line, events)
        elif state == BULK:
            self._bulk_header(line, events)

    def _send_handshake(self, events):
        commands = []
        expect = []
        if self.auth is not None and self.auth[1]:
            user, password = self.auth
            argv = [b"AUTH"] + ([user.encode()] if user else []) + \
                [password.encode()]
            commands.append(encode_command(argv))
            expect.append(AUTH)
        commands.append(encode_command([b"REPLCONF", b"listening-port",
                                        b"%d" % self.port]))
        expect.append(PORT)
        if self.ip:
            commands.append(encode_command([b"REPLCONF", b"ip-address",
                                            self.ip.encode()]))
            expect.append(IP)
        commands.append(encode_command([b"REPLCONF", b"capa", b"eof",
                                        b"capa", b"psync2", b"capa",
                                        SETSLOT_CAPA.encode()]))
        expect.append(CAPA)
        self.expect = expect
        self.state = expect.pop(0)
        events.append(("send", b"".join(commands)))

    def _next(self, events):
        if self.expect:
            self.state = self.expect.pop(0)
            return
        self.state = PSYNC
        replid = (self.replid or "?").encode()
        offset = self.offset if self.replid else -1
        argv = [b"PSYNC", replid, b"%d" % offset]
        if self.failover:
            argv.append(b"FAILOVER")
        events.append(("send", encode_command(argv)))

    def _psync_reply(self, line: str, events):
        if line == "":
            return      # keepalive newline before the reply
        if line.startswith("+FULLRESYNC"):
            parts = line.split()
            if len(parts) < 3 or len(parts[1]) != 40:
                self._fail(events, "error",
                           "Master replied with wrong +FULLRESYNC syntax.")
                return
            try:
                offset = int(parts[2])
            except ValueError:
                self._fail(events, "error",
                           "Master replied with wrong +FULLRESYNC syntax.")
                return
            self.state = BULK
            events.append(("fullresync", parts[1].lower(), offset))
        elif line.startswith("+CONTINUE"):
            parts = line.split()
            new = parts[1].lower() if len(parts) > 1 and \
                len(parts[1]) == 40 else None
            self.state = STREAM
            events.append(("continue", new))
        elif line.startswith(("-NOMASTERLINK", "-LOADING")):
            self._fail(events, "retry", "Master is currently unable to PSYNC "
                       "but should be in the future: %s" % line)
        else:
            self._fail(events, "error",
                       "Unexpected reply to PSYNC from master: %s" % line)

    def _bulk_header(self, line: str, events):
        if line == "":
            return      # the master keeps the link alive while it saves
        if line.startswith("-"):
            self._fail(events, "error",
                       "MASTER aborted replication with an error: %s" % line)
            return
        if not line.startswith("$"):
            self._fail(events, "error", "Bad protocol from MASTER, the first "
                       "byte is not '$' (we received '%s'), are you sure the "
                       "host and port are right?" % line[:64])
            return
        if line.startswith("$EOF:") and len(line) >= 5 + EOF_MARK_SIZE:
            self.mark = line[5:5 + EOF_MARK_SIZE].encode()
            self.size = None
            self.state = PAYLOAD
            events.append(("rdb_start", None))
            return
        try:
            size = int(line[1:])
        except ValueError:
            size = -1
        if size < 0:
            self._fail(events, "error", "Bad RDB payload length from "
                       "MASTER: '%s'" % line[:64])
            return
        self.size = self.left = size
        self.state = PAYLOAD
        events.append(("rdb_start", size))
        if size == 0:
            self.state = STREAM
            events.append(("rdb_end",))

    # -- the payload ----------------------------------------------------------
    def _payload(self, data: bytes, events):
        if self.mark is None:
            take = data[:self.left]
            self.left -= len(take)
            self.transfer_read += len(take)
            if take:
                events.append(("rdb", take))
            if self.left == 0:
                self.state = STREAM
                events.append(("rdb_end",))
                rest = data[len(take):]
                if rest:
                    events.append(("stream", rest))
            return
        self.transfer_read += len(data)
        joined = self.tail + data
        at = joined.find(self.mark)
        if at >= 0:
            if at:
                events.append(("rdb", joined[:at]))
            self.tail = b""
            self.state = STREAM
            events.append(("rdb_end",))
            rest = joined[at + EOF_MARK_SIZE:]
            if rest:
                events.append(("stream", rest))
            return
        keep = EOF_MARK_SIZE - 1
        if len(joined) > keep:
            events.append(("rdb", joined[:-keep]))
            self.tail = joined[-keep:]
        else:
            self.tail = joined

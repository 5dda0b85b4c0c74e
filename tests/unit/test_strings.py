"""String commands (rcluster/commands/strings.py) through a Server on a fake
clock.  The transcript below was recorded from redis-server 7.0.15 (one
connection, commands in order); rcluster must answer it byte for byte."""
from tests.protocol.helpers import ServerTestCase

TRANSCRIPT = [
    ('set k v',
     b'+OK\r\n'),
    ('set k v nx',
     b'$-1\r\n'),
    ('set k v2 xx get',
     b'$1\r\nv\r\n'),
    ('set k v3 nx get',
     b'$2\r\nv2\r\n'),
    ('set k v ex 0',
     b"-ERR invalid expire time in 'set' command\r\n"),
    ('set k v ex -1',
     b"-ERR invalid expire time in 'set' command\r\n"),
    ('set k v px 10 ex 10',
     b'-ERR syntax error\r\n'),
    ('set k v keepttl ex 10',
     b'-ERR syntax error\r\n'),
    ('set k v ex abc',
     b'-ERR value is not an integer or out of range\r\n'),
    ('set k v bad',
     b'-ERR syntax error\r\n'),
    ('get k',
     b'$2\r\nv2\r\n'),
    ('set n 10',
     b'+OK\r\n'),
    ('incr n',
     b':11\r\n'),
    ('incrby n -20',
     b':-9\r\n'),
    ('decrby n -9223372036854775808',
     b'-ERR decrement would overflow\r\n'),
    ('incrby n 9223372036854775807',
     b':9223372036854775798\r\n'),
    ('set big 9223372036854775807',
     b'+OK\r\n'),
    ('incr big',
     b'-ERR increment or decrement would overflow\r\n'),
    ('set f 10.5',
     b'+OK\r\n'),
    ('incrbyfloat f 0.1',
     b'$4\r\n10.6\r\n'),
    ('incrbyfloat f 1e400',
     b'$401\r\n10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880\r\n'),
    ('incrbyfloat f abc',
     b'-ERR value is not a valid float\r\n'),
    ('set f2 0.1',
     b'+OK\r\n'),
    ('incrbyfloat f2 0.2',
     b'$3\r\n0.3\r\n'),
    ('incrbyfloat f2 -0.3',
     b'$1\r\n0\r\n'),
    ('incr f',
     b'-ERR value is not an integer or out of range\r\n'),
    ('append a hello',
     b':5\r\n'),
    ('append a world',
     b':10\r\n'),
    ('strlen a',
     b':10\r\n'),
    ('setrange a 15 xyz',
     b':18\r\n'),
    ('get a',
     b'$18\r\nhelloworld\x00\x00\x00\x00\x00xyz\r\n'),
    ('setrange a -1 x',
     b'-ERR offset is out of range\r\n'),
    ('setrange empty 0 ""',
     b':2\r\n'),
    ('getrange a 0 -1',
     b'$18\r\nhelloworld\x00\x00\x00\x00\x00xyz\r\n'),
    ('getrange a -3 -1',
     b'$3\r\nxyz\r\n'),
    ('getrange a 10 5',
     b'$0\r\n\r\n'),
    ('getrange nokey 0 10',
     b'$0\r\n\r\n'),
    ('mset x 1 y 2',
     b'+OK\r\n'),
    ('mset x 1 y',
     b"-ERR wrong number of arguments for 'mset' command\r\n"),
    ('msetnx x 3 z 4',
     b':0\r\n'),
    ('msetnx z 4 w 5',
     b':1\r\n'),
    ('mget x y z nokey',
     b'*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n4\r\n$-1\r\n'),
    ('getset x 9',
     b'$1\r\n1\r\n'),
    ('getdel x',
     b'$1\r\n9\r\n'),
    ('getdel x',
     b'$-1\r\n'),
    ('getex y ex 100',
     b'$1\r\n2\r\n'),
    ('ttl y',
     b':100\r\n'),
    ('getex y persist',
     b'$1\r\n2\r\n'),
    ('ttl y',
     b':-1\r\n'),
    ('getex y ex 10 px 10',
     b'-ERR syntax error\r\n'),
    ('lcs a x',
     b'$0\r\n\r\n'),
    ('set s1 ohmytext',
     b'+OK\r\n'),
    ('set s2 mynewtext',
     b'+OK\r\n'),
    ('lcs s1 s2',
     b'$6\r\nmytext\r\n'),
    ('lcs s1 s2 len',
     b':6\r\n'),
    ('lcs s1 s2 idx',
     b'*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n'),
    ('lcs s1 s2 idx minmatchlen 4 withmatchlen',
     b'*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n'),
    ('lcs s1 s2 len idx',
     b'-ERR If you want both the length and indexes, please just use IDX.\r\n'),
    ('lpush list a',
     b':1\r\n'),
    ('get list',
     b'-WRONGTYPE Operation against a key holding the wrong kind of value\r\n'),
    ('incr list',
     b'-WRONGTYPE Operation against a key holding the wrong kind of value\r\n'),
    ('setnx k v',
     b':0\r\n'),
    ('setex k 10 v',
     b'+OK\r\n'),
    ('setex k 0 v',
     b"-ERR invalid expire time in 'setex' command\r\n"),
    ('psetex k 100 v',
     b'+OK\r\n'),
    ('substr a 0 3',
     b'$4\r\nhell\r\n'),
]


class StringTranscriptTests(ServerTestCase):
    def test_transcript_matches_redis(self):
        for line, expected in TRANSCRIPT:
            self.assertEqual(self.raw(*line.split()), expected, line)


class StringExpiryTests(ServerTestCase):
    def send(self, line):
        return self.raw(*line.split())

    def test_set_px_expires_on_the_clock(self):
        self.assertEqual(self.send("SET k v PX 1500"), b"+OK\r\n")
        self.clock.advance(1.4)
        self.assertEqual(self.send("GET k"), b"$1\r\nv\r\n")
        self.clock.advance(0.2)
        self.assertEqual(self.send("GET k"), b"$-1\r\n")

    def test_set_drops_ttl_unless_keepttl(self):
        self.send("SET k v EX 100")
        self.send("SET k v2 KEEPTTL")
        self.assertEqual(self.send("TTL k"), b":100\r\n")
        self.send("SET k v3")
        self.assertEqual(self.send("TTL k"), b":-1\r\n")

    def test_exat_and_pxat(self):
        self.send("SET k v EXAT 1700000010")
        self.assertEqual(self.send("PTTL k"), b":10000\r\n")
        self.send("SET k v PXAT 1700000000500")
        self.assertEqual(self.send("PTTL k"), b":500\r\n")
        self.send("GETEX k PXAT 1699999999000")    # in the past: deleted
        self.assertEqual(self.send("EXISTS k"), b":0\r\n")

    def test_incr_keeps_ttl(self):
        self.send("SET n 1 EX 50")
        self.send("INCR n")
        self.send("INCRBYFLOAT n 1.5")
        self.send("APPEND n 0")
        self.assertEqual(self.send("TTL n"), b":50\r\n")
        self.assertEqual(self.send("GET n"), b"$4\r\n3.50\r\n")

    def test_string_size_limit(self):
        self.server.settings.proto_max_bulk_len = 1024 * 1024
        self.assertEqual(self.send("SETRANGE k 1048576 x"),
                         b"-ERR string exceeds maximum allowed size "
                         b"(proto-max-bulk-len)\r\n")
        self.assertEqual(self.send("EXISTS k"), b":0\r\n")

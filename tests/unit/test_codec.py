"""The RESP codec: request parsing (hiredis fast path and Redis's exact
rules) and reply encoding, sans-IO.

Expected values were checked against redis-server 7.0.15.
"""
import math
import random

from twisted.trial.unittest import TestCase

from rcluster.resp import codec
from rcluster.resp.codec import (
    EMPTY_ARRAY, NO_REPLY, NULL_ARRAY, OK, Attribute, BigNum, Bool, Double,
    Error, Limits, Map, ProtocolError, Push, QueryBufferOverflow, Raw,
    RequestParser, SetReply, Status, Verbatim, encode, format_double,
    split_args)
from tests.protocol.helpers import request


def parse(chunks, parser=None, fast=True):
    """Feed chunks the way Client does; the requests, then ("ERR", text)
    if the stream ends in a protocol error."""
    parser = parser or RequestParser()
    out = []
    for chunk in chunks:
        out.extend(parser.feed(chunk, fast))
        try:
            while True:
                batch = parser.take()
                if not batch:
                    break
                out.extend(batch)
        except ProtocolError as err:
            out.append(("ERR", err.reply))
            return out
    return out


def splits(data: bytes):
    """Every way of cutting data in two, then byte by byte."""
    for i in range(len(data) + 1):
        yield [data[:i], data[i:]]
    yield [data[i:i + 1] for i in range(len(data))]


def mutated(rng, sample: bytes, pieces) -> bytes:
    """sample with one to three random bytes replaced, or pieces (one of
    ``pieces``) inserted."""
    data = bytearray(sample)
    for _ in range(rng.randrange(1, 4)):
        pos = rng.randrange(len(data))
        if rng.randrange(2):
            data[pos] = rng.randrange(256)
        else:
            data[pos:pos] = rng.choice(pieces)
    return bytes(data)


def exact_only():
    """A parser that never uses hiredis (unauthenticated clients don't)."""
    parser = RequestParser()
    parser.strict_auth = True
    return parser


PIPELINE = (request(b"SET", b"key", b"value") +
            request(b"GET", b"key") +
            request(b"ECHO", b"") +
            request(b"ECHO", b"with\r\nCRLF and * and $3\r\n") +
            request(b"PING"))
PIPELINE_ARGV = [[b"SET", b"key", b"value"], [b"GET", b"key"],
                 [b"ECHO", b""], [b"ECHO", b"with\r\nCRLF and * and $3\r\n"],
                 [b"PING"]]


class FastPathTests(TestCase):
    def test_pipeline_in_one_chunk(self):
        parser = RequestParser()
        self.assertEqual(parser.feed(PIPELINE), PIPELINE_ARGV)
        self.assertFalse(parser.more)
        self.assertEqual(parser.buffered, 0)

    def test_chunk_ending_after_an_element(self):
        # hiredis has read every byte but is inside an array: the next
        # chunk must complete this request, not start a new one.
        self.assertEqual(parse([b"*2\r\n$4\r\nECHO\r\n", b"$1\r\na\r\n"]),
                         [[b"ECHO", b"a"]])
        self.assertEqual(parse([b"*2\r\n", b"$4\r\nECHO\r\n$1\r\na\r\n"]),
                         [[b"ECHO", b"a"]])

    def test_header_read_in_full_is_checked_at_once(self):
        self.assertEqual(parse([b"*3000000000\r\n"]),
                         [("ERR", "Protocol error: invalid multibulk length")])

    def test_complete_requests_before_a_partial_one_come_at_once(self):
        data = PIPELINE * 40
        parser = RequestParser()
        cut = len(data) - 7
        batch = parser.feed(data[:cut])
        self.assertEqual(batch, (PIPELINE_ARGV * 40)[:-1])
        self.assertTrue(parser.more)
        self.assertEqual(parser.take(), ())
        self.assertEqual(parser.feed(data[cut:]), ())
        self.assertEqual(parser.take(), [[b"PING"]])
        self.assertFalse(parser.more)

    def test_hiredis_takes_over_after_a_split_request(self):
        data = PIPELINE * 40
        parser = RequestParser()
        parser.feed(data[:20])
        parser.feed(data[20:])
        # The split request, then everything else in one batch.
        self.assertEqual(parser.take(), PIPELINE_ARGV * 40)

    def test_hiredis_takes_over_after_a_request_it_does_not_take(self):
        parser = RequestParser()
        data = request(b"PING") + b"*0\r\nPING\r\n" + PIPELINE * 10
        self.assertEqual(parser.feed(data), [[b"PING"]])
        self.assertEqual(parser.take(), [[]])
        self.assertEqual(parser.take(), [[b"PING"]] + PIPELINE_ARGV * 10)
        self.assertFalse(parser.more)

    def test_huge_array_headers_cost_nothing(self):
        # hiredis would allocate the announced size at once and spend
        # seconds freeing it: its reader refuses more than 128 elements.
        self.assertTrue(codec.HIREDIS_HARDENED)
        self.assertEqual(parse([b"*2147483647\r\n\x01"]), [])
        self.assertEqual(parse([b"*2147483647\r\n$1\r\na\r\n$1"]), [])
        self.assertEqual(parse([b"*1\r\n" + b"*100000\r\n" * 1000]),
                         [("ERR", "Protocol error: expected '$', got '*'")])
        # Requests with more arguments go by the exact rules.
        argv = [b"MSET"] + [b"k"] * 1000
        self.assertEqual(parse([request(*argv)]), [argv])

    def test_top_level_non_arrays_are_inline_commands(self):
        # Redis reads any request not starting with '*' as inline.
        self.assertEqual(parse([request(b"PING") + b":0\r\n"]),
                         [[b"PING"], [b":0"]])
        self.assertEqual(parse([request(b"PING") + b">1\r\n$4\r\nPING\r\n"]),
                         [[b"PING"], [b">1"], [b"$4"], [b"PING"]])
        self.assertEqual(parse([request(b"PING") + b"$4\r\nPING\r\n"]),
                         [[b"PING"], [b"$4"], [b"PING"]])

    def test_non_bulk_elements_are_refused(self):
        for element, got in ((b":1", ":"), (b"$-1", None), (b"_", "_"),
                             (b",1.5", ","), (b"#t", "#"), (b"-ERR x", "-"),
                             (b"*1\r\n$1\r\na", "*"), (b"%1\r\n$1\r\na\r\n$1\r\nb", "%")):
            data = b"*1\r\n" + element + b"\r\n"
            expected = "Protocol error: invalid bulk length" if got is None \
                else "Protocol error: expected '$', got '%s'" % got
            self.assertEqual(parse([data]), [("ERR", expected)], data)

    def test_non_bulk_element_after_a_long_pipeline(self):
        # hiredis parses on past it (the types are checked per batch): the
        # requests before it run, then the error, wherever the 1 KiB
        # boundaries of hiredis's buffer fell.
        error = ("ERR", "Protocol error: expected '$', got ':'")
        for count in (1, 9, 40):
            data = PIPELINE * count + b"*1\r\n:1\r\n" + PIPELINE * 20
            self.assertEqual(parse([data]), PIPELINE_ARGV * count + [error])
            self.assertEqual(parse([data[:30], data[30:]]),
                             PIPELINE_ARGV * count + [error])

    def test_documented_leniency_of_the_fast_path(self):
        # A chunk hiredis parses in full takes simple strings, big numbers
        # and verbatim strings as bulks (Redis: expected '$', got '+')...
        self.assertEqual(parse([b"*2\r\n+ECHO\r\n(12\r\n"]), [[b"ECHO", b"12"]])
        self.assertEqual(parse([b"*1\r\n=8\r\ntxt:PING\r\n"]), [[b"PING"]])
        # ... and a later RESP3 set as an array.
        self.assertEqual(parse([request(b"PING") + b"~1\r\n$4\r\nPING\r\n"]),
                         [[b"PING"], [b"PING"]])
        # The exact rules apply as soon as the request is split.
        self.assertEqual(parse([b"*2\r\n+EC", b"HO\r\n(12\r\n"]),
                         [("ERR", "Protocol error: expected '$', got '+'")])

    def test_payload_crlf_is_not_checked(self):
        # Redis skips the two bytes after a bulk without looking at them.
        data = b"*2\r\n$4\r\nECHO\r\n$1\r\naxx*1\r\n$4\r\nPINGyy"
        for chunks in splits(data):
            self.assertEqual(parse(chunks), [[b"ECHO", b"a"], [b"PING"]])


class SplitTests(TestCase):
    """A stream gives the same requests however it is cut."""

    def check(self, data, expected):
        for chunks in splits(data):
            self.assertEqual(parse(chunks), expected, chunks)
            self.assertEqual(parse(chunks, exact_only()), expected, chunks)

    def test_pipelined_bulk_requests(self):
        self.check(PIPELINE, PIPELINE_ARGV)

    def test_every_three_way_split(self):
        data = request(b"SET", b"k", b"v") + request(b"GET", b"k")
        expected = [[b"SET", b"k", b"v"], [b"GET", b"k"]]
        for i in range(len(data) + 1):
            for j in range(i, len(data) + 1):
                chunks = [data[:i], data[i:j], data[j:]]
                self.assertEqual(parse(chunks), expected, chunks)

    def test_inline_and_multibulk_mixed(self):
        data = (b"PING\r\n" + request(b"ECHO", b"x y") +
                b"ECHO \"a b\" 'c'\n\r\n" + request(b"GET", b"k") +
                b"*0\r\n*-1\r\n" + b"  SET k v  \r\n" + request(b"PING"))
        self.check(data, [[b"PING"], [b"ECHO", b"x y"], [b"ECHO", b"a b", b"c"],
                          [], [b"GET", b"k"], [], [], [b"SET", b"k", b"v"],
                          [b"PING"]])

    def test_requests_then_an_error(self):
        data = PIPELINE + b"*1\r\n$x\r\n" + PIPELINE
        self.check(data, PIPELINE_ARGV +
                   [("ERR", "Protocol error: invalid bulk length")])

    def test_big_argument(self):
        value = bytes(range(256)) * 200     # over BIG_ARG
        data = request(b"SET", b"k", value) + request(b"GET", b"k")
        expected = [[b"SET", b"k", value], [b"GET", b"k"]]
        step = 997
        for cut in list(range(0, 40)) + list(range(40, len(data), step)) + \
                list(range(len(data) - 40, len(data) + 1)):
            self.assertEqual(parse([data[:cut], data[cut:]]), expected, cut)
            self.assertEqual(parse([data[:cut], data[cut:]], exact_only()),
                             [("ERR", "Protocol error: unauthenticated bulk "
                                      "length")])
        chunks = [data[i:i + 1000] for i in range(0, len(data), 1000)]
        self.assertEqual(parse(chunks), expected)

    def test_random_cuts_of_a_long_pipeline(self):
        rng = random.Random(7)
        requests = [[b"SET", b"key:%d" % i, b"v" * rng.randrange(0, 300)]
                    for i in range(300)]
        data = b"".join(request(*argv) for argv in requests)
        for _ in range(30):
            cuts = sorted(rng.sample(range(len(data)), 20))
            chunks = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
            self.assertEqual(parse(chunks), requests)


class DifferentialFuzzTests(TestCase):
    """hiredis and the exact rules agree on mutated pipelines, however
    they are cut (save the documented leniencies of complete chunks)."""

    SAMPLE = (PIPELINE + b"PING a\r\n" + request(b"x" * 40) +
              b"*0\r\n\r\n" + request(b"SET", b"k", b"v"))
    LENIENT = frozenset(b"+(=~|")

    def test_mutations(self):
        rng = random.Random(11)
        checked = 0
        for _ in range(3000):
            data = mutated(rng, self.SAMPLE, [b"*", b"$", b"\r\n", b"-1", b"0",
                                              b"\x00", b"*200\r\n"])
            if self.LENIENT & set(data):
                continue
            whole = parse([data])
            cut = rng.randrange(len(data) + 1)
            self.assertEqual(parse([data[:cut], data[cut:]]), whole, data)
            self.assertEqual(parse([data[i:i + 1] for i in range(len(data))]),
                             whole, data)
            checked += 1
        self.assertGreater(checked, 1000)


class BigRequestTests(TestCase):
    """Requests with more elements than hiredis takes as an array (MSET of
    many keys) are read element by element in C when they are all there
    and canonical; anything else gets the exact rules.  The reference is
    the same bytes fed one at a time (the exact rules only)."""

    def big(self, n=300):
        return [b"MSET"] + [b"k%d" % i for i in range(n)]

    def test_same_requests_however_cut(self):
        argv = self.big()
        data = request(*argv) + request(b"PING") + request(*argv[:201])
        expected = [argv, [b"PING"], argv[:201]]
        self.assertEqual(parse([data]), expected)
        rng = random.Random(3)
        for _ in range(20):
            cut = rng.randrange(len(data))
            self.assertEqual(parse([data[:cut], data[cut:]]), expected)

    def test_non_canonical_forms_get_the_exact_rules(self):
        argv = self.big()
        data = request(*argv)
        element = b"$2\r\nk7\r\n"
        for variant, error in (
                (b"$02\r\nk7\r\n", "Protocol error: invalid bulk length"),
                (b"+k7\r\n", "Protocol error: expected '$', got '+'"),
                (b":7\r\n", "Protocol error: expected '$', got ':'"),
                (b"*1\r\n$1\r\nx\r\n",
                 "Protocol error: expected '$', got '*'"),
                (b"$2\r\nk7xx", None)):       # the CR LF is not checked
            mutated = data.replace(element, variant, 1)
            one_by_one = parse([mutated[i:i + 1]
                                for i in range(len(mutated))])
            self.assertEqual(parse([mutated]), one_by_one, variant)
            self.assertEqual(one_by_one[-1] if error else one_by_one,
                             ("ERR", error) if error else [argv])

    def test_proto_max_bulk_len(self):
        limits = Limits()
        limits.proto_max_bulk_len = 5
        argv = self.big(200) + [b"x" * 6]
        self.assertEqual(parse([request(*argv)], RequestParser(limits)),
                         [("ERR", "Protocol error: invalid bulk length")])

    def test_mutations(self):
        rng = random.Random(5)
        sample = request(*self.big(150)) + request(b"GET", b"k")
        for _ in range(300):
            data = mutated(rng, sample, [b"*", b"$", b"\r\n", b"-1", b"0", b"+",
                                         b"*200\r\n"])
            self.assertEqual(parse([data]),
                             parse([data[i:i + 1] for i in range(len(data))]),
                             data)


class ExactRulesTests(TestCase):
    def error(self, data, parser=None):
        result = parse([data], parser)
        self.assertIsInstance(result[-1], tuple, data)
        return result[-1][1]

    def test_empty_requests(self):
        for data in (b"*0\r\n", b"*-1\r\n", b"*-5\r\n", b"\r\n", b"\n", b"   \r\n"):
            self.assertEqual(parse([data]), [[]], data)

    def test_invalid_multibulk_length(self):
        for header in (b"*abc", b"*01", b"*+1", b"* 1", b"*1 ", b"*-0",
                       b"*3000000000", b"*2147483648", b"*99999999999999999999",
                       b"*"):
            self.assertEqual(self.error(header + b"\r\n"),
                             "Protocol error: invalid multibulk length", header)
        self.assertEqual(parse([b"*2147483647\r\n"]), [])   # waits

    def test_invalid_bulk_length(self):
        for header in (b"$abc", b"$01", b"$-1", b"$-0", b"$+1", b"$",
                       b"$9223372036854775808", b"$536870913"):
            self.assertEqual(self.error(b"*1\r\n" + header + b"\r\n"),
                             "Protocol error: invalid bulk length", header)

    def test_proto_max_bulk_len(self):
        limits = Limits()
        limits.proto_max_bulk_len = 1024 * 1024
        self.assertEqual(parse([b"*1\r\n$1048576\r\n"], RequestParser(limits)),
                         [])
        self.assertEqual(parse([b"*1\r\n$1048577\r\n"], RequestParser(limits)),
                         [("ERR", "Protocol error: invalid bulk length")])
        # Read from the settings object, so CONFIG SET applies at once.
        parser = RequestParser(limits)
        limits.proto_max_bulk_len = 2 * 1024 * 1024
        self.assertEqual(parse([b"*1\r\n$1048577\r\n"], parser), [])

    def test_expected_dollar(self):
        self.assertEqual(self.error(b"*1\r\n+PING\r\n*1\r\n"),
                         "Protocol error: expected '$', got '+'")
        # The raw byte, sent back as is.
        text = self.error(b"*1\r\n\xff1\r\n")
        self.assertEqual(encode(Error("ERR " + text)),
                         b"-ERR Protocol error: expected '$', got '\xff'\r\n")
        # CR or LF in the reply become spaces.
        text = self.error(b"*1\r\n\r\n")
        self.assertEqual(encode(Error("ERR " + text)),
                         b"-ERR Protocol error: expected '$', got ' '\r\n")

    def test_line_ends_at_first_cr(self):
        # Redis takes the line up to the first CR and skips two bytes.
        self.assertEqual(parse([b"*1\rX$4\rYPING\r\n"]), [[b"PING"]])
        self.assertEqual(self.error(b"*1\r\r\n$4\r\nPING\r\n"),
                         "Protocol error: expected '$', got '\n'")
        self.assertEqual(parse([request(b"PING") + b"\r\n"]),
                         [[b"PING"], []])

    def test_nul_hides_a_line_end(self):
        # Redis looks for line ends with strchr: a NUL stops the search.
        self.assertEqual(parse([b"PING\0\r\n"]), [])
        self.assertEqual(parse([b"*1\0\r\n"]), [])
        self.assertEqual(parse([b"*1\r\n$4\0\r\nPING\r\n"]), [])
        self.assertEqual(parse([request(b"PING") + b"\0\r\nPING\r\n"]),
                         [[b"PING"]])
        # A NUL inside a bulk is data.
        self.assertEqual(parse([request(b"ECHO", b"a\0b")]),
                         [[b"ECHO", b"a\0b"]])

    def test_too_big_lines(self):
        big = b"x" * (64 * 1024)
        # Exactly 64 KiB without an end is still waited for.
        self.assertEqual(parse([big]), [])
        self.assertEqual(self.error(big + b"x"),
                         "Protocol error: too big inline request")
        self.assertEqual(self.error(b"*1" + big),
                         "Protocol error: too big mbulk count string")
        self.assertEqual(self.error(b"*1\r\n$1" + big),
                         "Protocol error: too big bulk count string")
        # A NUL keeps the line open until it is too big.
        self.assertEqual(self.error(b"PING\0\r\n" + big),
                         "Protocol error: too big inline request")
        # A long inline line that arrives whole is fine.
        self.assertEqual(parse([b"ECHO " + big + b"\r\n"]), [[b"ECHO", big]])

    def test_unbalanced_quotes(self):
        for line in (b'ECHO "a', b"ECHO 'a", b'ECHO "a"b', b"ECHO 'a'b",
                     b'ECHO "a\\"', b'"'):
            self.assertEqual(self.error(line + b"\r\n"),
                             "Protocol error: unbalanced quotes in request", line)

    def test_unauthenticated_limits(self):
        parser = exact_only()
        self.assertEqual(parse([request(*[b"a"] * 10)], parser),
                         [[b"a"] * 10])
        self.assertEqual(self.error(request(*[b"a"] * 11), exact_only()),
                         "Protocol error: unauthenticated multibulk length")
        self.assertEqual(parse([request(b"x" * 16384)], exact_only()),
                         [[b"x" * 16384]])
        self.assertEqual(self.error(request(b"x" * 16385), exact_only()),
                         "Protocol error: unauthenticated bulk length")
        # Inline commands have no such limits.
        self.assertEqual(parse([b"a " * 20 + b"\r\n"], exact_only()),
                         [[b"a"] * 20])

    def test_requests_parsed_ahead_are_checked_when_auth_is_lost(self):
        parser = RequestParser()
        batch = parser.feed(request(b"RESET") + request(*[b"a"] * 11))
        parser.strict_auth = True    # RESET ran: not authenticated any more
        parser.unread(batch[1:])
        self.assertRaises(ProtocolError, parser.take)

    def test_master_stream(self):
        limits = Limits()
        limits.proto_max_bulk_len = 1024 * 1024
        limits.client_query_buffer_limit = 1024 * 1024
        parser = RequestParser(limits)
        parser.master = True
        value = b"v" * (2 * 1024 * 1024)
        self.assertEqual(parse([request(b"SET", b"k", value)[:-10],
                                b"v" * 8 + b"\r\n\n"], parser),
                         [[b"SET", b"k", value], []])
        with self.assertRaises(ProtocolError) as caught:
            parser.feed(b"PING\r\n")
            parser.take()
        self.assertIsNone(caught.exception.reply)

    def test_query_buffer_limit(self):
        limits = Limits()
        limits.client_query_buffer_limit = 1024 * 1024
        parser = RequestParser(limits)
        parser.feed(b"*2\r\n$3\r\nSET\r\n$2000000\r\n")
        parser.take()
        # As in Redis, what is read of the element counts, not its header.
        parser.feed(b"x" * (1024 * 1024))
        with self.assertRaises(QueryBufferOverflow) as caught:
            parser.feed(b"x")
        self.assertIsNone(caught.exception.reply)
        self.assertEqual(caught.exception.head, b"x" * 64)
        # Unparsed requests count too (a blocked client's backlog).
        parser = RequestParser(limits)
        chunk = request(b"PING") * 1000
        with self.assertRaises(QueryBufferOverflow):
            for _ in range(100):
                parser.feed(chunk, fast=False)

    def test_big_argument_is_gathered_in_linear_time(self):
        # Quadratic regrowth of the buffer would take minutes here.
        value = b"v" * (16 * 1024 * 1024)
        data = request(b"SET", b"k", value) + request(b"PING")
        parser = RequestParser()
        out = []
        for i in range(0, len(data), 1024):
            out.extend(parser.feed(data[i:i + 1024]))
            out.extend(parser.take())
        out.extend(parser.take())
        self.assertEqual(out, [[b"SET", b"k", value], [b"PING"]])

    def test_backlog_bigger_than_a_hiredis_slice(self):
        requests = [[b"SET", b"k%d" % i, b"v" * 1000] for i in range(3000)]
        data = b"".join(request(*argv) for argv in requests)
        parser = RequestParser()
        for i in range(0, len(data), 65536):
            self.assertEqual(parser.feed(data[i:i + 65536], fast=False), ())
        out = []
        while True:
            batch = parser.take()
            if not batch:
                break
            out.extend(batch)
        self.assertEqual(out, requests)
        self.assertEqual(parser.buffered, 0)


class SplitArgsTests(TestCase):
    def test_plain(self):
        self.assertEqual(split_args(b"  SET  k\tv \r"), [b"SET", b"k", b"v"])
        self.assertEqual(split_args(b""), [])
        self.assertEqual(split_args(b" \t "), [])
        # \v and \f are blanks only before a token.
        self.assertEqual(split_args(b"ECHO a\vb \fc\v"),
                         [b"ECHO", b"a\vb", b"c\v"])
        # A C string: nothing after a NUL.
        self.assertEqual(split_args(b"a b\0c d"), [b"a", b"b"])

    def test_double_quotes(self):
        self.assertEqual(split_args(b'"a b" "" "\\x41\\x4g\\n\\r\\t\\b\\a\\z\\""'),
                         [b"a b", b"", b"Ax4g\n\r\t\b\az\""])
        self.assertEqual(split_args(b'"\\xff\\x00"'), [b"\xff\x00"])
        self.assertEqual(split_args(b'x"a b" z'), [b"xa b", b"z"])
        self.assertIsNone(split_args(b'"a"b'))
        self.assertIsNone(split_args(b'"abc'))
        self.assertIsNone(split_args(b'"abc\\'))
        self.assertEqual(split_args(b'"a"\t"b"'), [b"a", b"b"])

    def test_single_quotes(self):
        self.assertEqual(split_args(b"'a \\' \\n b'"), [b"a ' \\n b"])
        self.assertIsNone(split_args(b"'a'b"))
        self.assertIsNone(split_args(b"'abc"))


class ReplyEncodingTests(TestCase):
    def both(self, value):
        return encode(value, False), encode(value, True)

    def test_scalars(self):
        self.assertEqual(self.both(b"abc"), (b"$3\r\nabc\r\n",) * 2)
        self.assertEqual(self.both(b""), (b"$0\r\n\r\n",) * 2)
        self.assertEqual(self.both(bytearray(b"ab")), (b"$2\r\nab\r\n",) * 2)
        self.assertEqual(self.both(memoryview(b"ab")), (b"$2\r\nab\r\n",) * 2)
        self.assertEqual(self.both("é"), (b"$2\r\n\xc3\xa9\r\n",) * 2)
        self.assertEqual(self.both(0), (b":0\r\n",) * 2)
        self.assertEqual(self.both(-1), (b":-1\r\n",) * 2)
        self.assertEqual(self.both(1024), (b":1024\r\n",) * 2)
        self.assertEqual(self.both(-2**63), (b":-9223372036854775808\r\n",) * 2)
        self.assertEqual(self.both(True), (b":1\r\n",) * 2)
        self.assertEqual(self.both(False), (b":0\r\n",) * 2)
        self.assertEqual(self.both(None), (b"$-1\r\n", b"_\r\n"))
        self.assertEqual(self.both(NULL_ARRAY), (b"*-1\r\n", b"_\r\n"))
        self.assertEqual(self.both(Bool(1)), (b":1\r\n", b"#t\r\n"))
        self.assertEqual(self.both(Bool(0)), (b":0\r\n", b"#f\r\n"))
        self.assertEqual(self.both(BigNum(1234567999999999999999999999999999999)),
                         (b"$37\r\n1234567999999999999999999999999999999\r\n",
                          b"(1234567999999999999999999999999999999\r\n"))
        self.assertEqual(self.both(Verbatim(b"This is a verbatim\nstring")),
                         (b"$25\r\nThis is a verbatim\nstring\r\n",
                          b"=29\r\ntxt:This is a verbatim\nstring\r\n"))
        self.assertEqual(self.both(OK), (b"+OK\r\n",) * 2)
        self.assertEqual(self.both(EMPTY_ARRAY), (b"*0\r\n",) * 2)
        self.assertEqual(self.both(NO_REPLY), (b"",) * 2)
        self.assertEqual(self.both(Raw(b":7\r\n")), (b":7\r\n",) * 2)

    def test_status_and_errors(self):
        self.assertEqual(self.both(Status("QUEUED")), (b"+QUEUED\r\n",) * 2)
        self.assertEqual(encode(Error("ERR bad")), b"-ERR bad\r\n")
        self.assertEqual(encode(Error("-WRONGTYPE x")), b"-WRONGTYPE x\r\n")
        # One line: trimmed of CR LF, the ones inside become spaces.
        self.assertEqual(encode(Error("\r\nERR a\r\nb\nc\r\n")),
                         b"-ERR a  b c\r\n")
        self.assertEqual(encode(Status("a\nb")), b"+a b\r\n")
        # Bytes decoded with surrogateescape go back out as they came.
        text = b"ERR unknown command '\xff'".decode("utf-8", "surrogateescape")
        self.assertEqual(encode(Error(text)),
                         b"-ERR unknown command '\xff'\r\n")

    def test_doubles(self):
        # addReplyDouble's %.17g, as redis-server 7.0 prints ZSCORE.
        cases = [(1.5, b"1.5"), (0.1, b"0.10000000000000001"), (3.0, b"3"),
                 (-0.0, b"-0"), (1e17, b"1e+17"), (1e16, b"10000000000000000"),
                 (3.141, b"3.141"), (1 / 3, b"0.33333333333333331"),
                 (1e-5, b"1.0000000000000001e-05"), (1e300, b"1.0000000000000001e+300"),
                 (math.inf, b"inf"), (-math.inf, b"-inf"), (math.nan, b"nan"),
                 (-math.nan, b"-nan")]
        for value, text in cases:
            self.assertEqual(format_double(value), text, value)
            self.assertEqual(self.both(Double(value)),
                             (b"$%d\r\n%s\r\n" % (len(text), text),
                              b",%s\r\n" % text))
        self.assertEqual(self.both(2.5), (b"$3\r\n2.5\r\n", b",2.5\r\n"))

    def test_aggregates(self):
        value = [b"a", 1, None, [b"b", [2]], (3,)]
        self.assertEqual(self.both(value), (
            b"*5\r\n$1\r\na\r\n:1\r\n$-1\r\n*2\r\n$1\r\nb\r\n*1\r\n:2\r\n*1\r\n:3\r\n",
            b"*5\r\n$1\r\na\r\n:1\r\n_\r\n*2\r\n$1\r\nb\r\n*1\r\n:2\r\n*1\r\n:3\r\n"))
        self.assertEqual(self.both([]), (b"*0\r\n",) * 2)
        self.assertEqual(self.both([NULL_ARRAY]), (b"*1\r\n*-1\r\n", b"*1\r\n_\r\n"))

    def test_maps_and_sets(self):
        value = Map([(b"a", 1), (b"b", Map([(b"c", Double(0.5))]))])
        self.assertEqual(self.both(value), (
            b"*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n*2\r\n$1\r\nc\r\n$3\r\n0.5\r\n",
            b"%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n%1\r\n$1\r\nc\r\n,0.5\r\n"))
        self.assertEqual(self.both({b"k": b"v"}),
                         (b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n",
                          b"%1\r\n$1\r\nk\r\n$1\r\nv\r\n"))
        self.assertEqual(self.both(Map([])), (b"*0\r\n", b"%0\r\n"))
        self.assertEqual(self.both(SetReply([0, 1, 2])),
                         (b"*3\r\n:0\r\n:1\r\n:2\r\n", b"~3\r\n:0\r\n:1\r\n:2\r\n"))
        self.assertEqual(self.both({b"x"}), (b"*1\r\n$1\r\nx\r\n", b"~1\r\n$1\r\nx\r\n"))
        self.assertEqual(self.both(frozenset()), (b"*0\r\n", b"~0\r\n"))

    def test_push_and_attribute(self):
        self.assertEqual(self.both(Push([b"message", b"ch", b"hi"])), (
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
            b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"))
        # DEBUG PROTOCOL attrib: RESP2 clients never see attributes.
        attribute = Attribute([(b"key-popularity", [b"key:123", 90])])
        self.assertEqual(self.both(attribute), (b"", (
            b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n")))

    def test_unknown_type(self):
        self.assertRaises(TypeError, encode, object())

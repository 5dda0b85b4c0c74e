"""Latency: per-command histograms, the latency monitor, and the hook that
feeds them and the slow log after every command (Redis's latency.c and
the end of server.c's call()).

- ``Histogram``: HdrHistogram as Redis 7.0 configures it (1 ns .. 1 s, 2
  significant digits: 23 buckets of 128 half-sub-buckets), recorded in
  nanoseconds.  Percentiles (INFO latencystats) and the cumulative
  distribution of LATENCY HISTOGRAM walk it exactly as hdr_histogram.c
  does, so the numbers match Redis's for the same samples.
- ``LatencyMonitor``: time series of latency spikes per event ("command",
  "fast-command", "expire-cycle", "eviction-cycle"...), 160 samples each,
  one per second, kept when at least ``latency-monitor-threshold`` ms.
- ``Observer``: keeps ``server.latency_on`` and ``server.slow_ns`` up to
  date; ``Server.call`` records each command's duration into its row's
  histogram inline while latency tracking is on (the hot path), and calls
  ``slow()`` only for a command past the slow log's or the monitor's
  threshold (an int comparison otherwise).

Durations are the time the handler ran.  A command that parks its client
(DEBUG SLEEP here doesn't stop the reactor) is recorded when it answers,
with the time it took to answer - what Redis reports for it, since there
DEBUG SLEEP blocks the server for that long - via ``record_completed``.
"""
from __future__ import annotations

# hdr_init(1, 1000000000, 2): the layout those parameters give.
_SUB_HALF_MAG = 7                      # sub_bucket_half_count_magnitude
_SUB_HALF = 1 << _SUB_HALF_MAG         # 128
_SUB_COUNT = 2 * _SUB_HALF             # 256
_SUB_MASK = _SUB_COUNT - 1
_BUCKETS = 23
COUNTS_LEN = (_BUCKETS + 1) * _SUB_HALF     # 3072
MIN_NS = 1
MAX_NS = 1_000_000_000


def counts_index(ns: int) -> int:
    bucket = (ns | _SUB_MASK).bit_length() - (_SUB_HALF_MAG + 1)
    return ((bucket + 1) << _SUB_HALF_MAG) + (ns >> bucket) - _SUB_HALF


def value_at_index(index: int) -> int:
    bucket = (index >> _SUB_HALF_MAG) - 1
    sub = (index & (_SUB_HALF - 1)) + _SUB_HALF
    if bucket < 0:
        sub -= _SUB_HALF
        bucket = 0
    return sub << bucket


def _indices(value: int):
    bucket = (value | _SUB_MASK).bit_length() - (_SUB_HALF_MAG + 1)
    return bucket, value >> bucket


def lowest_equivalent(value: int) -> int:
    bucket, sub = _indices(value)
    return sub << bucket


def highest_equivalent(value: int) -> int:
    bucket, sub = _indices(value)
    size = 1 << (bucket + 1 if sub >= _SUB_COUNT else bucket)
    return (sub << bucket) + size - 1


class Histogram:
    __slots__ = ("counts",)

    def __init__(self):
        self.counts = [0] * COUNTS_LEN

    @property
    def total(self) -> int:
        # Summed when read (LATENCY HISTOGRAM, INFO: ~10 us), not counted
        # per command (Server.call records into ``counts`` only).
        return sum(self.counts)

    def record(self, ns: int):
        """updateCommandLatencyHistogram: clamp to [1 ns, 1 s], count."""
        if ns < MIN_NS:
            ns = MIN_NS
        elif ns > MAX_NS:
            ns = MAX_NS
        self.counts[counts_index(ns)] += 1

    def value_at_percentile(self, percentile: float) -> int:
        """hdr_value_at_percentile, in ns."""
        requested = min(percentile, 100.0)
        wanted = max(int(requested / 100 * self.total + 0.5), 1)
        seen = 0
        value = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= wanted:
                value = value_at_index(index)
                break
        if percentile == 0.0:
            return lowest_equivalent(value)
        return highest_equivalent(value)

    def cdf(self) -> list:
        """fillCommandCDF: [usec, cumulative count, ...] from a logarithmic
        iteration (first bucket 1024 ns, base 2), empty steps left out."""
        out = []
        counts = self.counts
        total = self.total
        index = -1
        cumulative = 0
        highest = 0
        value = 0
        level = 1024
        level_lowest = lowest_equivalent(level)
        previous = 0
        while True:
            # log_iter_next
            if not (cumulative < total or (
                    index < COUNTS_LEN
                    and value_at_index(index + 1) > level_lowest)):
                break
            while True:
                if value >= level_lowest:
                    level *= 2
                    level_lowest = lowest_equivalent(level)
                    break
                index += 1          # move_next
                if index >= COUNTS_LEN:
                    break
                cumulative += counts[index]
                value = value_at_index(index)
                highest = highest_equivalent(value)
            if index >= COUNTS_LEN:
                # move_next failed: the iteration step still reports.
                if cumulative > previous:
                    out += [highest // 1000, cumulative]
                break
            if cumulative > previous:
                out += [highest // 1000, cumulative]
            previous = cumulative
        return out


def format_percentiles(histogram: Histogram, percentiles: str) -> str:
    """fillPercentileDistributionLatencies: p50=...,p99=... in usec."""
    parts = []
    for text in percentiles.split():
        value = histogram.value_at_percentile(float(text))
        parts.append("p%s=%.3f" % (text, value / 1000.0))
    return ",".join(parts)


# -- the latency monitor ------------------------------------------------------

TS_LEN = 160            # LATENCY_TS_LEN


class TimeSeries:
    __slots__ = ("samples", "idx", "max")

    def __init__(self):
        self.samples = [(0, 0)] * TS_LEN      # (unix time, latency ms)
        self.idx = 0
        self.max = 0

    def add(self, now: int, latency: int):
        if latency > self.max:
            self.max = latency
        prev = (self.idx + TS_LEN - 1) % TS_LEN
        ptime, platency = self.samples[prev]
        if ptime == now:
            if latency > platency:
                self.samples[prev] = (now, latency)
            return
        self.samples[self.idx] = (now, latency)
        self.idx = (self.idx + 1) % TS_LEN

    def ordered(self) -> list:
        """The samples oldest first, empty slots left out."""
        return [self.samples[(self.idx + j) % TS_LEN] for j in range(TS_LEN)
                if self.samples[(self.idx + j) % TS_LEN][0]]


class LatencyMonitor:
    def __init__(self):
        self.events: dict = {}        # name (str) -> TimeSeries

    def add_sample(self, event: str, latency_ms: int, now: int):
        ts = self.events.get(event)
        if ts is None:
            ts = self.events[event] = TimeSeries()
        ts.add(now, latency_ms)

    def latest(self) -> list:
        out = []
        for event, ts in self.events.items():
            when, latency = ts.samples[(ts.idx + TS_LEN - 1) % TS_LEN]
            out.append([event.encode(), when, latency, ts.max])
        return out

    def history(self, event: str) -> list:
        ts = self.events.get(event)
        return [] if ts is None else [list(s) for s in ts.ordered()]

    def reset(self, events=None) -> int:
        if events is None:
            count = len(self.events)
            self.events.clear()
            return count
        resets = 0
        for name in list(self.events):
            if any(name.lower() == e.lower() for e in events):
                del self.events[name]
                resets += 1
        return resets

    def find(self, event: str):
        """(name, series) for an event name (case-insensitive), or None."""
        for name, ts in self.events.items():
            if name.lower() == event.lower():
                return name, ts
        return None

    def graph(self, event: str, ts: TimeSeries, now: int) -> str:
        """latencyCommandGenSparkeline."""
        samples = []
        low = high = 0
        for when, latency in ts.ordered():
            if not samples:
                low = high = latency
            else:
                high = max(high, latency)
                low = min(low, latency)
            elapsed = now - when
            if elapsed < 60:
                label = "%ds" % elapsed
            elif elapsed < 3600:
                label = "%dm" % (elapsed // 60)
            elif elapsed < 86400:
                label = "%dh" % (elapsed // 3600)
            else:
                label = "%dd" % (elapsed // 86400)
            samples.append((latency, label))
        out = "%s - high %d ms, low %d ms (all time high %d ms)\n" % (
            event, high, low, ts.max)
        out += "-" * 80 + "\n"
        return out + sparkline(samples, 80, 4)

    def analyze(self, event: str, now: int) -> dict:
        """analyzeLatencyForEvent."""
        ts = self.events.get(event)
        stats = dict(all_time_high=ts.max if ts else 0, avg=0, min=0, max=0,
                     mad=0, samples=0, period=0)
        if ts is None:
            return stats
        values = [(w, l) for w, l in ts.samples if w]
        if not values:
            return stats
        stats["samples"] = len(values)
        latencies = [l for _, l in values]
        stats["min"], stats["max"] = min(latencies), max(latencies)
        stats["avg"] = sum(latencies) // len(values)
        stats["period"] = max(now - min(w for w, _ in values), 1)
        stats["mad"] = sum(abs(stats["avg"] - l) for l in latencies) \
            // len(values)
        return stats

    def doctor(self, settings, now: int) -> str:
        """createLatencyReport, for the events rcluster records."""
        threshold = settings.latency_monitor_threshold
        if not self.events and not threshold:
            return ("I'm sorry, Dave, I can't do that. Latency monitoring is "
                    "disabled in this Redis instance. You may use \"CONFIG "
                    "SET latency-monitor-threshold <milliseconds>.\" in order "
                    "to enable it. If we weren't in a deep space mission I'd "
                    "suggest to take a look at "
                    "https://redis.io/topics/latency-monitor.\n")
        report = ""
        advice = set()
        for number, (event, ts) in enumerate(self.events.items(), 1):
            if number == 1:
                report += ("Dave, I have observed latency spikes in this "
                           "Redis instance. You don't mind talking about it, "
                           "do you Dave?\n\n")
            s = self.analyze(event, now)
            report += ("%d. %s: %d latency spikes (average %dms, mean "
                       "deviation %dms, period %.2f sec). Worst all time "
                       "event %dms." % (number, event, s["samples"], s["avg"],
                                        s["mad"],
                                        s["period"] / max(s["samples"], 1),
                                        ts.max))
            low = event.lower()
            if low == "command":
                slower = settings.slowlog_log_slower_than
                if slower < 0:
                    advice.add("slowlog_enabled")
                elif slower // 1000 > threshold:
                    advice.add("slowlog_tuning")
                advice.update(("slowlog_inspect", "large_objects"))
            elif low == "fast-command":
                advice.add("scheduler")
            elif low == "expire-cycle":
                advice.update(("hz", "large_objects"))
            elif low == "eviction-del":
                advice.add("large_objects")
            elif low == "eviction-cycle":
                advice.add("mass_eviction")
            report += "\n"
        if not self.events and not advice:
            return report + (
                "Dave, no latency spike was observed during the lifetime of "
                "this Redis instance, not in the slightest bit. I honestly "
                "think you ought to sit down calmly, take a stress pill, and "
                "think things over.\n")
        if not advice:
            return report + (
                "\nWhile there are latency events logged, I'm not able to "
                "suggest any easy fix. Please use the Redis community to get "
                "some help, providing this report in your help request.\n")
        report += "\nI have a few advices for you:\n\n"
        t = threshold * 1000
        texts = (
            ("slowlog_enabled", "- There are latency issues with potentially "
             "slow commands you are using. Try to enable the Slow Log Redis "
             "feature using the command 'CONFIG SET slowlog-log-slower-than "
             "%d'. If the Slow log is disabled Redis is not able to log slow "
             "commands execution for you.\n" % t),
            ("slowlog_tuning", "- Your current Slow Log configuration only "
             "logs events that are slower than your configured latency "
             "monitor threshold. Please use 'CONFIG SET "
             "slowlog-log-slower-than %d'.\n" % t),
            ("slowlog_inspect", "- Check your Slow Log to understand what are "
             "the commands you are running which are too slow to execute. "
             "Please check https://redis.io/commands/slowlog for more "
             "information.\n"),
            ("scheduler", "- The system is slow to execute Redis code paths "
             "not containing system calls. This usually means the system "
             "does not provide Redis CPU time to run for long periods. You "
             "should try to:\n"
             "  1) Lower the system load.\n"
             "  2) Use a computer / VM just for Redis if you are running "
             "other software in the same system.\n"
             "  3) Check if you have a \"noisy neighbour\" problem.\n"
             "  4) Check with 'redis-cli --intrinsic-latency 100' what is the "
             "intrinsic latency in your system.\n"
             "  5) Check if the problem is allocator-related by recompiling "
             "Redis with MALLOC=libc, if you are using Jemalloc. However this "
             "may create fragmentation problems.\n"),
            ("hz", "- In order to make the Redis keys expiring process more "
             "incremental, try to set the 'hz' configuration parameter to 100 "
             "using 'CONFIG SET hz 100'.\n"),
            ("large_objects", "- Deleting, expiring or evicting (because of "
             "maxmemory policy) large objects is a blocking operation. If you "
             "have very large objects that are often deleted, expired, or "
             "evicted, try to fragment those objects into multiple smaller "
             "objects.\n"),
            ("mass_eviction", "- Sudden changes to the 'maxmemory' setting "
             "via 'CONFIG SET', or allocation of large objects via sets or sorted "
             "sets intersections, STORE option of SORT, Redis Cluster large "
             "keys migrations (RESTORE command), may create sudden memory "
             "pressure forcing the server to block trying to evict keys. \n"),
        )
        for name, text in texts:
            if name == "hz" and settings.hz >= 100:
                continue
            if name in advice:
                report += text
        return report


def sparkline(samples, columns: int, rows: int) -> str:
    """sparklineRender with SPARKLINE_FILL: samples are (value, label)."""
    out = ""
    for j in range(0, len(samples), columns):
        if j:
            out += "\n"
        out += _sparkline_range(samples, rows, j,
                                min(columns, len(samples) - j))
    return out


def _sparkline_range(samples, rows, offset, length) -> str:
    values = [v for v, _ in samples]
    low, high = min(values), max(values)
    relmax = (high - low) or 1
    charset = "_o#"
    steps = len(charset) * rows
    labels = any(label for _, label in samples)
    out = ""
    row = 0
    while True:
        more = False
        chars = [" "] * length
        for j in range(length):
            value, label = samples[j + offset]
            step = int(int((value - low) * steps) / relmax)
            step = min(max(step, 0), steps - 1)
            if row < rows:
                charidx = step - (rows - row - 1) * len(charset)
                more = True
                if 0 <= charidx < len(charset):
                    chars[j] = charset[charidx]
                elif charidx >= len(charset):
                    chars[j] = "|"
            else:
                if labels and row - rows < 1:
                    more = True
                    break
                at = row - rows - 1
                if label and len(label) > at:
                    more = True
                    chars[j] = label[at]
        if not more:
            return out
        row += 1
        out += "".join(chars) + "\n"


# -- the hook Server.call runs ------------------------------------------------

class Observer:
    """Feeds the slow log, the command histograms and the latency monitor
    (see the module docstring)."""

    def __init__(self, server):
        from rcluster.slowlog import SlowLog
        self.server = server
        self.slowlog = SlowLog()
        self.monitor = LatencyMonitor()
        self.histograms: dict = {}       # command row -> Histogram
        self.refresh()

    def refresh(self, *_):
        """Re-read the settings; install or remove the hook."""
        s = self.server.settings
        slower = s.slowlog_log_slower_than
        self.slow_ns = slower * 1000 if slower >= 0 else None
        self.tracking = s.latency_tracking
        threshold = s.latency_monitor_threshold
        self.monitor_ns = threshold * 1_000_000 if threshold else None
        self.slowlog.trim(s.slowlog_max_len)
        # What Server.call checks inline: record into each row's histogram
        # (latency_on), and call slow() from this many ns on.
        server = self.server
        server.latency_on = self.tracking
        thresholds = [t for t in (self.slow_ns, self.monitor_ns)
                      if t is not None]
        server.slow_ns = min(thresholds) if thresholds else 1 << 62
        if not self.tracking:
            for row in server._all_rows:
                row.histogram = None

    def histogram_for(self, cmd) -> "Histogram":
        """The row's histogram, made on its first recorded call."""
        hist = self.histograms.get(cmd)
        if hist is None:
            hist = self.histograms[cmd] = Histogram()
        cmd.histogram = hist
        return hist

    def observe(self, c, cmd, argv, ns: int):
        """Everything Server.call does for a finished command (for one that
        answers later than its handler returned)."""
        if self.tracking:
            self.histogram_for(cmd).record(ns)
        self.slow(c, cmd, argv, ns)

    def slow(self, c, cmd, argv, ns: int):
        """A command past a threshold: the slow log, the latency monitor."""
        slow = self.slow_ns
        if slow is not None and ns >= slow:
            self._slow(c, cmd, argv, ns)
        if self.monitor_ns is not None and ns >= self.monitor_ns:
            self.monitor.add_sample(
                "fast-command" if "fast" in cmd.flags else "command",
                ns // 1_000_000, int(self.server.clock.seconds()))

    def _slow(self, c, cmd, argv, ns):
        if "skip_slowlog" in cmd.flags:
            return
        server = self.server
        self.slowlog.push(c, argv, ns // 1000, int(server.clock.seconds()),
                          server.settings.slowlog_max_len)

    def record_completed(self, c, cmd, argv, ns: int):
        """A command that answered later than its handler returned (a
        parked DEBUG SLEEP): recorded with the time it took to answer."""
        self.observe(c, cmd, argv, ns)

    def add_sample_if_needed(self, event: str, latency_ms: int):
        """latencyAddSampleIfNeeded, for other layers (expire-cycle,
        eviction-cycle...)."""
        threshold = self.server.settings.latency_monitor_threshold
        if threshold and latency_ms >= threshold:
            self.monitor.add_sample(event, latency_ms,
                                    int(self.server.clock.seconds()))

    def latencystats(self) -> list:
        """The INFO latencystats fields."""
        s = self.server.settings
        if not s.latency_tracking:
            return []
        out = []
        for cmd, hist in self.histograms.items():
            if hist.total:
                out.append(("latency_percentiles_usec_" + cmd.name,
                            format_percentiles(
                                hist, s.latency_tracking_info_percentiles)))
        return out


def install(server):
    """Server.__init__: ``server.latency`` (the Observer) and
    ``server.observe``; follows CONFIG SET."""
    observer = Observer(server)
    server.latency = observer
    names = {"slowlog-log-slower-than", "slowlog-max-len", "latency-tracking",
             "latency-monitor-threshold"}

    def listener(name, value):
        if name in names:
            observer.refresh()
    server.settings.listeners.append(listener)
    return observer


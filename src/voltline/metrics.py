"""Prometheus metrics of one app: a registry of its own, cheap counts on the hot paths, read when scraped.

Each `create_app` holds its own `CollectorRegistry`, never the process-wide default one, so that
several apps in one process (the tests) each count only their own traffic. The OCPP receive
loop counts into plain dicts (`OcppCounts`: a dict update, ~0.2 µs, where a labelled
prometheus_client Counter costs ~1.4 µs; bench/metrics.py measures both); a collector turns
them into counters at scrape time.
Values that mirror state (chargers connected, the writer's queue) are read from their owners
when scraped (`Metrics.gauge`). Rarer events (a writer batch, a command, a control run, an HTTP
request) go to prometheus_client histograms and counters, except HTTP requests, counted into
plain lists (`HttpCounts`) like the OCPP frames: a prometheus_client counter and histogram cost
a few µs a request, the lists well under one.

Label values are bounded: OCPP actions outside the known set count as `other`, error codes
outside the known set as `other`, HTTP routes are route templates (`unmatched` for a path no
route serves) and methods outside the common ones are `other`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# The text exposition format generate_latest writes (Prometheus text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTHER = "other"
UNMATCHED = "unmatched"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Refusals at the OCPP upgrade, shown at 0 before the first one so that rate() works from the start.
# ocpp/authentication.py `refusal_reason`, and throttled addresses refused without a check.
AUTH_FAILURE_REASONS = (
    "throttled",
    "unknown_identity",
    "below_minimum_profile",
    "tls_required",
    "no_credentials",
    "no_password_set",
    "wrong_username",
    "wrong_password",
)
SMART_OUTCOMES = ("ok", "failed")

BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COMMAND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SMART_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

Labels = tuple[str, ...]
Read = Callable[[], Mapping[Labels, float]]


class OcppCounts:
    """Frames of the OCPP gateway, counted on the receive path (event loop only, no locks).

    `known_actions` and `known_codes` are set by the gateway: the OCPP actions and CALLERROR
    codes it knows; anything else a charger sends is counted as `other`.
    """

    def __init__(self) -> None:
        self.known_actions: frozenset[str] = frozenset()
        self.known_codes: frozenset[str] = frozenset()
        self.messages: dict[Labels, int] = {}
        self.call_errors: dict[Labels, int] = {}
        self.auth_failures: dict[str, int] = dict.fromkeys(AUTH_FAILURE_REASONS, 0)
        self.dropped_frames = 0

    def message(self, direction: str, action: str | None, outcome: str) -> None:
        """A CALL that travelled `in` (from a charger) or `out` (to one), and how it was answered."""
        key = (direction, action if action in self.known_actions else OTHER, outcome)
        self.messages[key] = self.messages.get(key, 0) + 1

    def call_error(self, direction: str, code: str) -> None:
        """A CALLERROR sent (`out`) or received (`in`)."""
        key = (direction, code if code in self.known_codes else OTHER)
        self.call_errors[key] = self.call_errors.get(key, 0) + 1

    def auth_failure(self, reason: str) -> None:
        """A charger refused at the WebSocket upgrade."""
        self.auth_failures[reason] = self.auth_failures.get(reason, 0) + 1

    def collect(self) -> Iterator[Metric]:
        """The counts as Prometheus counter families."""
        yield _counter(
            "voltline_ocpp_messages",
            "OCPP CALLs by direction (in: from a charger, out: to one), action and outcome.",
            ("direction", "action", "outcome"),
            self.messages.items(),
        )
        yield _counter(
            "voltline_ocpp_call_errors",
            "OCPP CALLERRORs by direction (out: sent by Voltline, in: sent by a charger) and error code.",
            ("direction", "code"),
            self.call_errors.items(),
        )
        yield _counter(
            "voltline_ocpp_auth_failures",
            "Chargers refused at the WebSocket upgrade, by reason.",
            ("reason",),
            [((reason,), count) for reason, count in self.auth_failures.items()],
        )
        dropped = [((), self.dropped_frames)]
        yield _counter("voltline_ocpp_frames_dropped", "Frames that were not OCPP-J and went unanswered.", (), dropped)


def _counter(name: str, documentation: str, labels: Labels, values: Iterable[tuple[Labels, float]]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, value in values:
        family.add_metric(key, value)
    return family


class HttpCounts:
    """HTTP requests by method, route template and status, each with its latency buckets (event loop only).

    One list per series: a count per bucket of `HTTP_BUCKETS` (the last for +Inf), then the sum
    of seconds. Scraped as a counter by status and a histogram by method and route.
    """

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, int], list[float]] = {}

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """An HTTP request was answered; `route` is its route template."""
        key = (method if method in HTTP_METHODS else OTHER, route, status)
        counts = self.series.get(key)
        if counts is None:
            counts = self.series[key] = [0.0] * (len(HTTP_BUCKETS) + 2)
        counts[bisect_left(HTTP_BUCKETS, seconds)] += 1
        counts[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        """The requests counter and the latency histogram."""
        requests = CounterMetricFamily(
            "voltline_http_requests",
            "HTTP requests by method, route template and status.",
            labels=("method", "route", "status"),
        )
        merged: dict[tuple[str, str], list[float]] = {}
        for (method, route, status), counts in self.series.items():
            requests.add_metric((method, route, str(status)), sum(counts[:-1]))
            into = merged.setdefault((method, route), [0.0] * len(counts))
            for i, value in enumerate(counts):
                into[i] += value
        yield requests
        seconds = HistogramMetricFamily(
            "voltline_http_request_seconds",
            "Seconds from an HTTP request's arrival to the end of its answer.",
            labels=("method", "route"),
        )
        bounds = [*map(floatToGoString, HTTP_BUCKETS), "+Inf"]
        for labels, counts in merged.items():
            cumulative, running = [], 0.0
            for bound, count in zip(bounds, counts[:-1], strict=True):
                running += count
                cumulative.append((bound, running))
            seconds.add_metric(labels, cumulative, counts[-1])
        yield seconds


class _ReadCollector(Collector):
    """Collects the OCPP and HTTP counts and the gauges read from their owners when scraped."""

    def __init__(self, ocpp: OcppCounts, http: HttpCounts) -> None:
        self.ocpp = ocpp
        self.http = http
        self.gauges: list[tuple[str, str, Labels, Read]] = []

    def collect(self) -> Iterator[Metric]:
        yield from self.ocpp.collect()
        yield from self.http.collect()
        for name, documentation, labels, read in self.gauges:
            family = GaugeMetricFamily(name, documentation, labels=labels)
            for key, value in read().items():
                family.add_metric(key, value)
            yield family


class Metrics:
    """One app's Prometheus registry and what counts into it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.ocpp = OcppCounts()
        self.http = HttpCounts()
        self._reads = _ReadCollector(self.ocpp, self.http)
        registry = self.registry
        registry.register(self._reads)
        for process_wide in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(process_wide)  # read-only views of the process: safe to share
        self.writer_batch_size = Histogram(
            "voltline_writer_batch_size",
            "Rows (meter frames and log entries) written per writer transaction.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.writer_commit_seconds = Histogram(
            "voltline_writer_commit_seconds",
            "Seconds from asking for the write connection to the commit of a writer batch.",
            buckets=COMMIT_BUCKETS,
            registry=registry,
        )
        self.commands = Counter(
            "voltline_commands",
            "Commands sent to chargers, by command and outcome.",
            ("command", "outcome"),
            registry=registry,
        )
        self.commands_fenced = Counter(
            "voltline_commands_fenced",
            "Control commands this gateway refused for carrying a lower control-lease epoch.",
            registry=registry,
        )
        self.command_seconds = Histogram(
            "voltline_command_seconds",
            "Seconds from sending a command to its outcome.",
            ("command",),
            buckets=COMMAND_BUCKETS,
            registry=registry,
        )
        self.smart_runs = Counter(
            "voltline_smart_runs", "Smart-charging control runs of a site, by outcome.", ("outcome",), registry=registry
        )
        self.smart_run_seconds = Histogram(
            "voltline_smart_run_seconds",
            "Seconds a smart-charging control run of a site took.",
            buckets=SMART_BUCKETS,
            registry=registry,
        )
        for outcome in SMART_OUTCOMES:
            self.smart_runs.labels(outcome)

    def gauge(self, name: str, documentation: str, labels: Labels, read: Read) -> None:
        """A gauge whose values `read()` returns, by label values, whenever the metrics are scraped."""
        self._reads.gauges.append((name, documentation, labels, read))

    def observe_batch(self, rows: int, seconds: float) -> None:
        """The meter writer committed a batch of `rows` in `seconds`."""
        self.writer_batch_size.observe(rows)
        self.writer_commit_seconds.observe(seconds)

    def command(self, command: str, outcome: str, seconds: float) -> None:
        """A command ended: `ok`, `timeout`, `offline` or `error`."""
        self.commands.labels(command, outcome).inc()
        self.command_seconds.labels(command).observe(seconds)

    def smart_run(self, outcome: str, seconds: float) -> None:
        """A site's control run ended: `ok` or `failed`."""
        self.smart_runs.labels(outcome).inc()
        self.smart_run_seconds.observe(seconds)

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format (`CONTENT_TYPE`)."""
        return generate_latest(self.registry)

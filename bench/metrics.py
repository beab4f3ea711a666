"""What counting for /metrics costs on the hot paths: timeit of each record call, in one process.

    .venv/bin/python bench/metrics.py [--number 1000000]

The OCPP receive loop counts every CALL it answers (`OcppCounts.message`, through
`session.ctx.counts` as endpoint.py does); beside it, for scale, the same count through a
labelled prometheus_client Counter (`labels(...).inc()`, and a cached child's `inc()`). The HTTP
middleware's cost is measured as the difference between a trivial ASGI app called with and
without `HttpMetrics` around it. Prints one line per measurement (best of 5, ns per call).
"""

from __future__ import annotations

import argparse
import asyncio
import timeit
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from voltline.api.metrics import HttpMetrics
from voltline.metrics import Metrics


def best_ns(call: Any, number: int) -> float:
    """Nanoseconds per call, best of five runs."""
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e9


def record_calls(number: int) -> dict[str, float]:
    """The record functions the hot paths call, and prometheus_client's own for comparison."""
    metrics = Metrics()
    metrics.ocpp.known_actions = frozenset({"MeterValues", "Heartbeat", "BootNotification"})
    session = SimpleNamespace(ctx=SimpleNamespace(counts=metrics.ocpp))
    counter = Counter("bench_messages", "x", ("direction", "action", "outcome"), registry=CollectorRegistry())
    child = counter.labels("in", "MeterValues", "result")
    return {
        "session.ctx.counts.message(in, MeterValues, result)": best_ns(
            lambda: session.ctx.counts.message("in", "MeterValues", "result"), number
        ),
        "OcppCounts.message, unknown action -> other": best_ns(
            lambda: metrics.ocpp.message("in", "Bogus", "error"), number
        ),
        "OcppCounts.call_error": best_ns(lambda: metrics.ocpp.call_error("out", "FormationViolation"), number),
        "prometheus Counter.labels(...).inc()": best_ns(
            lambda: counter.labels("in", "MeterValues", "result").inc(), number
        ),
        "prometheus cached child .inc()": best_ns(child.inc, number),
        "HttpCounts.request (counter and histogram)": best_ns(
            lambda: metrics.http.request("GET", "/api/v2/teams/{team}", 200, 0.003), number
        ),
        "Metrics.observe_batch (two histograms)": best_ns(lambda: metrics.observe_batch(120, 0.004), number // 10),
    }


async def _trivial_app(scope: Any, receive: Any, send: Any) -> None:
    scope["route"] = SimpleNamespace(path_format="/api/v2/teams/{team}")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _nothing(_message: Any) -> None:
    return None


def middleware_cost(number: int) -> dict[str, float]:
    """A trivial ASGI app called directly, with and without HttpMetrics around it."""
    wrapped = HttpMetrics(_trivial_app, Metrics())
    loop = asyncio.new_event_loop()

    def run(app: Any) -> float:
        async def many() -> None:
            for _ in range(number):
                await app({"type": "http", "method": "GET"}, _nothing, _nothing)

        return min(timeit.repeat(lambda: loop.run_until_complete(many()), number=1, repeat=5)) / number * 1e9

    try:
        bare, with_metrics = run(_trivial_app), run(wrapped)
    finally:
        loop.close()
    added = with_metrics - bare
    return {"ASGI call, bare": bare, "ASGI call, with HttpMetrics": with_metrics, "HttpMetrics adds": added}


def main() -> None:
    """Print the measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=1_000_000, help="calls per timing run")
    args = parser.parse_args()
    results = {**record_calls(args.number), **middleware_cost(args.number // 10)}
    for name, ns in results.items():
        print(f"{ns:8.0f} ns  {name}")


if __name__ == "__main__":
    main()

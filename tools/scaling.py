"""docs/scaling.md's arithmetic: an installation's sizes for N chargers, from measured figures and stated assumptions.

Run `python tools/scaling.py` and paste its output over the block between the markers in
docs/scaling.md after changing a figure (tests/test_scaling_doc.py fails while they differ).
Each MEASURED figure names the row of docs/benchmarks.md it comes from; each ASSUMED one is a
property of the fleet, not of Voltline, and is the first thing to replace with your own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KIB, MIB, GIB, GB, TB = 1024, 1024**2, 1024**3, 10**9, 10**12
FLEETS = (100_000, 1_000_000)

MEASURED = {
    # docs/benchmarks.md, table row "10,000 connected chargers": 33.5 KiB per idle charger (2026-12-07).
    "rss_per_charger": 33.5 * KIB,
    # "Idle chargers, 2026-12-07": RSS of a process with no charger, 102 MiB.
    "rss_base": 102 * MIB,
    # "Durable ingest, 2026-12-07 afternoon", row "open loop, 60 s | ingest, PostgreSQL": 317 µs/msg.
    "gateway_cpu_per_meter_values": 317e-6,
    # The same row: PostgreSQL itself used 0.36 core at 2,000 MeterValues/s.
    "postgres_cpu_per_meter_values": 0.36 / 2000,
    # "Storage per meter frame (PostgreSQL), 2026-12-07": raw frame, table and indexes.
    "bytes_per_frame": 476,
    # The same section: at most 557 bytes per 15-minute rollup row (a small table: page overhead in it).
    "bytes_per_rollup": 557,
    # Table row "REST GET one charger": PostgreSQL 500 req/s with p99 <= 10 ms in one process.
    "api_requests_per_process": 500,
    # Table row "smart charging": a change reaches 1,000 connectors in 0.47-0.72 s (the slower end).
    "control_connectors_per_second": 1000 / 0.72,
}

ASSUMED = {
    "heartbeat_interval_s": 300,  # VOLTLINE_OCPP_HEARTBEAT_INTERVAL's default
    "meter_interval_s": 60,  # the chargers' MeterValueSampleInterval while charging
    "charging_share_peak": 0.30,  # chargers in a transaction at the busiest hour
    "charging_share_day": 0.15,  # the same over a whole day
    "api_requests_per_charger_hour": 6,  # apps and integrations polling every 10 minutes
    "chargers_per_gateway": 40_000,  # a gateway's planned load (memory-bound, see the table)
    "gated_share": 0.30,  # connectors whose limit changes at once when a price gate opens
}


@dataclass(frozen=True)
class Sizes:
    """What N chargers need, at the busiest hour unless said otherwise."""

    chargers: int
    meter_values_per_s: float
    heartbeats_per_s: float
    gateways: int
    chargers_per_gateway_normal: float
    chargers_per_gateway_one_down: float
    gateway_rss: float
    gateway_cpu_each: float
    postgres_ingest_cpu: float
    postgres_commits_per_s: float
    frames_per_day: float
    raw_bytes_per_day: float
    rollup_bytes_per_day: float
    api_per_s: float
    api_processes: int
    nats_subscriptions: int
    gate_change_seconds: float


def size(chargers: int) -> Sizes:
    """The arithmetic of docs/scaling.md for one fleet size."""
    m, a = MEASURED, ASSUMED
    meter_values = chargers * a["charging_share_peak"] / a["meter_interval_s"]
    heartbeats = chargers / a["heartbeat_interval_s"]
    # N+1: with one gateway down the others still hold every charger within the planned load.
    gateways = math.ceil(chargers / a["chargers_per_gateway"]) + 1
    one_down = chargers / (gateways - 1)
    # A heartbeat is one small write transaction (services/charger_reports.record_heartbeat);
    # its cost is not measured: a MeterValues' cost stands in for it as an upper bound.
    messages = meter_values + heartbeats
    frames_per_day = chargers * a["charging_share_day"] * 86_400 / a["meter_interval_s"]
    rollups_per_day = chargers * a["charging_share_day"] * 96  # 96 quarter hours a day
    api = chargers * a["api_requests_per_charger_hour"] / 3600
    return Sizes(
        chargers=chargers,
        meter_values_per_s=meter_values,
        heartbeats_per_s=heartbeats,
        gateways=gateways,
        chargers_per_gateway_normal=chargers / gateways,
        chargers_per_gateway_one_down=one_down,
        gateway_rss=m["rss_base"] + one_down * m["rss_per_charger"],
        gateway_cpu_each=messages * m["gateway_cpu_per_meter_values"] / (gateways - 1),
        postgres_ingest_cpu=messages * m["postgres_cpu_per_meter_values"],
        postgres_commits_per_s=heartbeats + meter_values,  # an upper bound: group commit batches MeterValues
        frames_per_day=frames_per_day,
        raw_bytes_per_day=frames_per_day * m["bytes_per_frame"],
        rollup_bytes_per_day=rollups_per_day * m["bytes_per_rollup"],
        api_per_s=api,
        api_processes=math.ceil(api / m["api_requests_per_process"]) + 1,
        nats_subscriptions=2 * chargers,  # charger.<identity>.command and .connected, per connected charger
        gate_change_seconds=chargers * a["gated_share"] / m["control_connectors_per_second"],
    )


def table() -> str:
    """The results as the Markdown table docs/scaling.md holds."""
    fleets = [size(n) for n in FLEETS]
    rows = [
        ("MeterValues/s at the peak", lambda s: f"{s.meter_values_per_s:,.0f}"),
        ("Heartbeats/s", lambda s: f"{s.heartbeats_per_s:,.0f}"),
        ("gateways (N+1)", lambda s: f"{s.gateways}"),
        (
            "chargers per gateway, all up / one down",
            lambda s: f"{s.chargers_per_gateway_normal:,.0f} / {s.chargers_per_gateway_one_down:,.0f}",
        ),
        ("RSS per gateway, one down", lambda s: f"{s.gateway_rss / GIB:.2f} GiB"),
        ("CPU per gateway, one down", lambda s: f"{s.gateway_cpu_each:.2f} core"),
        ("PostgreSQL CPU for ingest and heartbeats", lambda s: f"{s.postgres_ingest_cpu:.2f} core"),
        ("PostgreSQL commits/s (at most)", lambda s: f"{s.postgres_commits_per_s:,.0f}"),
        ("raw frames per day", lambda s: f"{s.frames_per_day / 1e6:,.1f} M"),
        ("raw frames on disk per day", lambda s: f"{s.raw_bytes_per_day / GB:,.1f} GB"),
        ("raw frames, 90 days", lambda s: f"{90 * s.raw_bytes_per_day / TB:,.2f} TB"),
        ("rollups per year (kept)", lambda s: f"{365 * s.rollup_bytes_per_day / TB:,.2f} TB"),
        ("API requests/s", lambda s: f"{s.api_per_s:,.0f}"),
        ("api processes (N+1)", lambda s: f"{s.api_processes}"),
        ("NATS subscriptions", lambda s: f"{s.nats_subscriptions:,}"),
        ("one worker: a price gate reaching its connectors", lambda s: f"{s.gate_change_seconds:,.0f} s"),
    ]
    lines = ["| | " + " | ".join(f"{n:,} chargers" for n in FLEETS) + " |", "|---|" + "---|" * len(FLEETS)]
    lines += [f"| {name} | " + " | ".join(cell(s) for s in fleets) + " |" for name, cell in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())

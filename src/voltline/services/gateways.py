"""Gateway presence (DESIGN "Cluster"): gateways announce themselves; a silent gateway's chargers go offline.

Every gateway process publishes `gateway.alive` with its node id (`Runtime.node_id`) every
`VOLTLINE_GATEWAY_ANNOUNCE_INTERVAL` seconds, and each charger row names the gateway holding its
socket (`chargers.gateway_id`). `GatewayWatch` runs where the control loops run (`worker` and
`all` processes): a gateway not heard for 1.5 intervals is silent, and the watch, checking every
quarter interval, marks its chargers offline, so they show offline within two intervals of its
last announcement. A gateway the store names but the watch has not heard since it started (for
1.5 intervals) is silent too; the store is asked for those once an interval. The writes are
conditional on the row naming that gateway, so several watches doing the same work change
nothing twice. The watch then publishes `gateway.lost`; a gateway that was only slow (a stalled
event loop) hears it and records its open sockets online again (`Gateway._on_lost`).

With the in-memory bus the process is the only gateway: nothing to watch (its start marks every
charger offline, `presence.mark_all_offline`).
"""

from __future__ import annotations

import asyncio
import logging

from voltline import codec
from voltline.bus import MemoryBus, Subscription
from voltline.services import presence
from voltline.services.runtime import Runtime
from voltline.tasks import cancel_and_wait

log = logging.getLogger("voltline.ocpp")

ALIVE_SUBJECT = "gateway.alive"
LOST_SUBJECT = "gateway.lost"
SILENT_INTERVALS = 1.5  # announce intervals without a word after which a gateway is silent
CHECKS_PER_INTERVAL = 4


def encode_gateway(node_id: str) -> bytes:
    """The payload of `gateway.alive` and `gateway.lost`."""
    return codec.encode_json({"id": node_id})


def decode_gateway(data: bytes) -> str | None:
    """The node id a `gateway.*` message names, or None for anything else."""
    try:
        body = codec.decode_json(data)
    except ValueError:
        return None
    node_id = body.get("id") if isinstance(body, dict) else None
    return node_id if isinstance(node_id, str) and node_id else None


class GatewayWatch:
    """Hears the gateways' announcements and marks the chargers of a silent one offline."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.interval = runtime.settings.gateway_announce_interval
        self.heard: dict[str, float] = {}  # node id -> monotonic time of its last announcement
        self._began = 0.0
        self._swept = 0.0  # when the store was last asked which gateways hold chargers
        self._listening: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen and check; nothing with the in-memory bus (this process is the only gateway)."""
        if isinstance(self.runtime.bus, MemoryBus):
            return
        self._began = self._swept = self.runtime.clock.monotonic()
        self._listening = await self.runtime.bus.listen(ALIVE_SUBJECT, self._on_alive)
        self._task = asyncio.create_task(self._run(), name="voltline-gateway-watch")

    async def stop(self) -> None:
        """Stop listening and checking."""
        if self._listening is not None:
            await self._listening.unsubscribe()
            self._listening = None
        await cancel_and_wait([self._task])
        self._task = None

    async def _on_alive(self, _subject: str, data: bytes) -> None:
        node_id = decode_gateway(data)
        if node_id is not None:
            self.heard[node_id] = self.runtime.clock.monotonic()

    async def _run(self) -> None:
        while True:
            await self.runtime.clock.sleep(self.interval / CHECKS_PER_INTERVAL)
            try:
                await self.check()
            except Exception:  # task boundary: keep watching
                log.exception("gateway watch failed")

    async def check(self) -> None:
        """Mark the chargers of every silent gateway offline (each logged once) and tell it so."""
        now = self.runtime.clock.monotonic()
        limit = SILENT_INTERVALS * self.interval
        silent = {node_id for node_id, at in self.heard.items() if now - at > limit}
        # Once it listened long enough to have heard every live gateway, once an interval: the store's
        # gateways it did not hear (gone before this watch started).
        if now - self._began > limit and now - self._swept >= self.interval:
            self._swept = now
            live = set(self.heard) - silent
            silent |= await presence.holding_gateways(self.runtime) - live
        for node_id in silent:
            self.heard.pop(node_id, None)
            count = await presence.mark_gateway_offline(self.runtime, node_id)
            if count:
                log.warning("gateway %s went silent; its %d chargers marked offline", node_id, count)
                await self.runtime.bus.publish(LOST_SUBJECT, encode_gateway(node_id))

"""Message bus between processes: in-memory for one process, NATS for several."""

from voltline.bus.memory import Bus, Listener, MemoryBus, NoRespondersError, Subscription
from voltline.bus.nats import NatsBus

__all__ = ["Bus", "Listener", "MemoryBus", "NatsBus", "NoRespondersError", "Subscription", "make_bus"]


def make_bus(url: str, prefix: str = "voltline") -> Bus:
    """The bus `VOLTLINE_BUS_URL` names: NATS for `nats://` (several URLs comma-separated), else in memory."""
    if not url.strip():
        return MemoryBus()
    return NatsBus(url, prefix)

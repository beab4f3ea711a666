"""Message bus between processes: in-memory for one process, NATS for several."""

from voltline.bus.memory import Bus, MemoryBus, NoRespondersError, Subscription

__all__ = ["Bus", "MemoryBus", "NoRespondersError", "Subscription"]

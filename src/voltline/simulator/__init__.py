"""Simulated OCPP 1.6J charge points for tests, demos and benchmarks (`voltline simulate`)."""

from voltline.simulator.charger import SimulatedCharger

__all__ = ["SimulatedCharger"]

"""The electrical model of one simulated connector: what the car draws, and the energy register.

* Current per phase = min(the car's maximum, the connector's maximum, the charging-profile limit),
  floored to 0.1 A. Below 6 A (IEC 61851's minimum PWM duty) the EVSE suspends: 0 A.
* A single-phase car draws on L1 only; a single-phase charger reports L1 only.
* Power P = Σ V_p · I_p with V ≈ 230 V plus a little noise; the register grows by ∫P dt.
* The register is whole Wh and never decreases: the fraction below 1 Wh is carried over, so the
  sum of every `advance()` equals the register's growth exactly (meterStop - meterStart).

Pure: no I/O and no clock; the caller says how many seconds passed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

NOMINAL_VOLTAGE = 230.0
MIN_CURRENT = 6.0
FULL_SOC = 100.0


@dataclass(frozen=True)
class Car:
    """An electric vehicle as the charger sees it: phases, maximum current, battery."""

    max_current: float
    phases: int
    battery_wh: int
    soc: float


@dataclass(frozen=True)
class Sample:
    """One reading of the connector's meter."""

    register_wh: int
    currents: tuple[float, ...]
    voltages: tuple[float, ...]
    power_w: float
    offered: float
    soc: float | None


def random_car(rng: random.Random) -> Car:
    """A plausible car: mostly three-phase 16 A, some 32 A, some single-phase."""
    phases = 1 if rng.random() < 0.2 else 3
    max_current = rng.choice((16.0, 32.0)) if phases == 3 else rng.choice((16.0, 32.0, 20.0))
    return Car(max_current, phases, rng.randrange(40_000, 100_001, 1000), round(rng.uniform(10, 60), 1))


def floor_tenths(amps: float) -> float:
    """Round a current down to 0.1 A (the resolution chargers and R-16 use)."""
    return math.floor(amps * 10 + 1e-6) / 10


class Meter:
    """One connector's meter and the car plugged into it."""

    def __init__(self, rng: random.Random, phases: int = 3, max_current: float = 32.0, register_wh: int = 0) -> None:
        self.rng = rng
        self.phases = phases
        self.max_current = max_current
        self.register_wh = register_wh
        self.car: Car | None = None
        self.soc: float | None = None
        self.charging = False
        self.limit: float | None = None
        self.voltages = tuple(NOMINAL_VOLTAGE for _ in range(phases))
        self._carry = 0.0

    def plug(self, car: Car) -> None:
        """Connect a car (it draws nothing until `charging` is switched on)."""
        self.car, self.soc = car, car.soc

    def unplug(self) -> None:
        """Disconnect the car."""
        self.car, self.soc, self.charging = None, None, False

    @property
    def offered(self) -> float:
        """The current the EVSE offers per phase (Current.Offered): 0 while suspended."""
        offer = self.max_current if self.limit is None else min(self.max_current, self.limit)
        offer = floor_tenths(offer)
        return offer if offer >= MIN_CURRENT else 0.0

    @property
    def suspended_by_evse(self) -> bool:
        """True when the limit (a profile below 6 A) keeps the car from charging."""
        return self.offered == 0.0

    @property
    def suspended_by_ev(self) -> bool:
        """True when the car is full and takes no current."""
        return self.soc is not None and self.soc >= FULL_SOC

    @property
    def active_phases(self) -> int:
        """Phases the car draws on: 1 for a single-phase car or charger, else 3."""
        return min(self.phases, self.car.phases) if self.car is not None else self.phases

    @property
    def current(self) -> float:
        """Current per active phase, in A."""
        if self.car is None or not self.charging or self.suspended_by_ev:
            return 0.0
        return floor_tenths(min(self.car.max_current, self.offered))

    def currents(self) -> tuple[float, ...]:
        """Current on each metered phase (L1 first); idle phases read 0."""
        amps = self.current
        return tuple(amps if phase < self.active_phases else 0.0 for phase in range(self.phases))

    def power(self) -> float:
        """Active power in W: Σ V_p · I_p."""
        return sum(volts * amps for volts, amps in zip(self.voltages, self.currents(), strict=True))

    def advance(self, seconds: float) -> int:
        """Let `seconds` pass at the present draw; returns the whole Wh added to the register."""
        if seconds <= 0:
            return 0
        energy = self._carry + self.power() * seconds / 3600
        whole = math.floor(energy)
        self._carry = energy - whole
        self.register_wh += whole
        if self.car is not None and self.soc is not None:
            self.soc = min(FULL_SOC, self.soc + 100 * (self.power() * seconds / 3600) / self.car.battery_wh)
        self.voltages = tuple(round(self.rng.gauss(NOMINAL_VOLTAGE, 1.5), 1) for _ in range(self.phases))
        return whole

    def sample(self) -> Sample:
        """The meter's reading now."""
        soc = None if self.soc is None else round(self.soc, 1)
        return Sample(self.register_wh, self.currents(), self.voltages, round(self.power(), 1), self.offered, soc)


def amps_from_watts(watts: float, phases: int) -> float:
    """Current per phase for a total power limit (R-16: nominal 230 V, not the measured voltage)."""
    return floor_tenths(watts / (NOMINAL_VOLTAGE * phases))


def watts_from_amps(amps: float, phases: int) -> float:
    """Total power for a per-phase current limit (R-16: W = 230 * A * phases)."""
    return math.floor(NOMINAL_VOLTAGE * amps * phases * 10 + 1e-6) / 10

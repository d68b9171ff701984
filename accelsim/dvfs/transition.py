"""Cost of changing the operating point between consecutive GEMMs.

Regulator numbers (reference/timing.md s6 and s9 "DVFS transition"):

* **on-chip** regulator (integrated LDO / IVR, default): 20-100 ns per 100 mV step, use
  **50 ns per 100 mV** (Kim, Gupta, Wei, Brooks, HPCA 2008: nanosecond-scale switching;
  digital LDO settling 25-150 ns, Electronics 9(1):132, 2020);
* **off-chip** VRM: "tens of microseconds" per transition (Kim et al. HPCA 2008), timing.md
  s9 gives 20-50 us: use **30 us per transition** (modelled as one step of up to 1 V);
* frequency switch: clock divider **1 cycle** (1 ns at 1 GHz, default), PLL relock **~20 us**
  (timing.md s9, [M]);
* energy per transition ``(1 - eta) * C_domain * |V1^2 - V2^2|`` with ``eta = 0.8`` and
  ``C_domain = 10 nF`` (timing.md s9: 10-100 nF for a chip-scale domain, lower end for one
  array's domain), plus an optional fixed ``energy_per_transition_j``.

**Sequencing** (timing.md s6, Albea et al. IECON 2012): raise V before f, lower f before V.
So a change that raises V must wait for the ramp before the next GEMM may start (the stall is
the full ramp plus any frequency switch), while a change that only lowers V can keep computing
at the old, higher voltage during the ramp (the stall is only the frequency switch, unless
``stall_on_lower``). ``latency_s`` is the time until the new point is fully established,
``stall_s`` the part the array waits for; the caller charges leakage over ``stall_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from accelsim.config import (
    OperatingPoint,
    check_float,
    reject_unknown_keys,
)
from accelsim.errors import ConfigError
from accelsim.hw.energy import EnergyLedger

__all__ = [
    "REGULATORS",
    "TransitionCost",
    "TransitionModel",
    "TransitionTracker",
    "transition_model",
]


@dataclass(frozen=True)
class TransitionModel:
    """Latency and energy of operating-point changes (see the module docstring).

    ``step_v`` (V) is the regulator step, ``latency_per_step_s`` (s) the time per step,
    ``freq_switch_s`` (s) the time of a clock change, ``efficiency`` the regulator's
    conversion efficiency, ``c_domain_f`` (F) the switched domain capacitance,
    ``energy_per_transition_j`` (J) a fixed extra energy per change.
    """

    step_v: float = 0.1
    latency_per_step_s: float = 50e-9
    freq_switch_s: float = 1e-9
    efficiency: float = 0.8
    c_domain_f: float = 10e-9
    energy_per_transition_j: float = 0.0
    stall_on_lower: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "step_v", check_float("dvfs.step_v", self.step_v, 0.0, 2.0, lo_open=True)
        )
        for name in ("latency_per_step_s", "freq_switch_s"):
            object.__setattr__(self, name, check_float(f"dvfs.{name}", getattr(self, name), 0, 1))
        object.__setattr__(
            self, "efficiency", check_float("dvfs.efficiency", self.efficiency, 0.0, 1.0)
        )
        object.__setattr__(
            self, "c_domain_f", check_float("dvfs.c_domain_f", self.c_domain_f, 0.0, 1.0)
        )
        object.__setattr__(
            self,
            "energy_per_transition_j",
            check_float("dvfs.energy_per_transition_j", self.energy_per_transition_j, 0.0, 1.0),
        )
        if not isinstance(self.stall_on_lower, bool):
            raise ConfigError(
                f"dvfs.stall_on_lower: got {self.stall_on_lower!r}, expected true or false"
            )

    def cost(self, prev: OperatingPoint, new: OperatingPoint) -> TransitionCost:
        """Cost of switching from ``prev`` to ``new`` (zero when they are equal)."""
        dv = new.vdd - prev.vdd
        df = new.freq - prev.freq
        v_changes = abs(dv) > 1e-12
        f_changes = abs(df) > 1e-6
        if not v_changes and not f_changes:
            return TransitionCost()
        steps = math.ceil(abs(dv) / self.step_v - 1e-9) if v_changes else 0
        v_latency = steps * self.latency_per_step_s
        f_latency = self.freq_switch_s if f_changes else 0.0
        if dv > 0 or self.stall_on_lower:
            stall = v_latency + f_latency
        else:
            stall = f_latency
        energy = (1.0 - self.efficiency) * self.c_domain_f * abs(new.vdd**2 - prev.vdd**2)
        return TransitionCost(
            transitions=1,
            v_steps=steps,
            latency_s=v_latency + f_latency,
            stall_s=stall,
            energy_j=energy + self.energy_per_transition_j,
        )


#: Regulator presets (timing.md s6, s9).
REGULATORS: dict[str, dict[str, Any]] = {
    "on-chip": {},
    "off-chip": {"step_v": 1.0, "latency_per_step_s": 30e-6},
    "off-chip-pll": {"step_v": 1.0, "latency_per_step_s": 30e-6, "freq_switch_s": 20e-6},
    "on-chip-pll": {"freq_switch_s": 20e-6},
}


def transition_model(spec: str | dict[str, Any] | TransitionModel | None = None) -> TransitionModel:
    """A TransitionModel from a preset name (on-chip, off-chip, ...), a dict or a model.

    A dict may carry ``regulator`` (a preset) plus field overrides.
    """
    if spec is None:
        return TransitionModel()
    if isinstance(spec, TransitionModel):
        return spec
    if isinstance(spec, str):
        data: dict[str, Any] = {"regulator": spec}
    elif isinstance(spec, dict):
        data = dict(spec)
    else:
        raise ConfigError(f"dvfs.regulator: got {spec!r}, expected a preset name or a table")
    name = data.pop("regulator", "on-chip")
    if name not in REGULATORS:
        raise ConfigError(f"dvfs.regulator: got {name!r}, expected one of {', '.join(REGULATORS)}")
    allowed = {
        "step_v",
        "latency_per_step_s",
        "freq_switch_s",
        "efficiency",
        "c_domain_f",
        "energy_per_transition_j",
        "stall_on_lower",
    }
    reject_unknown_keys("dvfs", data, allowed)
    return TransitionModel(**{**REGULATORS[name], **data})


@dataclass(frozen=True)
class TransitionCost:
    """Cost of one (or, summed, several) operating-point changes: counts, s and J."""

    transitions: int = 0
    v_steps: int = 0
    latency_s: float = 0.0
    stall_s: float = 0.0
    energy_j: float = 0.0

    def __add__(self, other: TransitionCost) -> TransitionCost:
        return TransitionCost(
            transitions=self.transitions + other.transitions,
            v_steps=self.v_steps + other.v_steps,
            latency_s=self.latency_s + other.latency_s,
            stall_s=self.stall_s + other.stall_s,
            energy_j=self.energy_j + other.energy_j,
        )


@dataclass
class TransitionTracker:
    """Charges each change of operating point between consecutive GEMMs.

    ``step(op)`` returns the cost of moving from the previous GEMM's point to ``op`` (the
    first call starts from ``initial``, default: no cost) and accumulates ``total``. With a
    ledger, the regulator energy plus ``leak_w * stall_s`` go to its ``dvfs`` component.
    """

    model: TransitionModel = field(default_factory=TransitionModel)
    initial: OperatingPoint | None = None
    total: TransitionCost = field(default_factory=TransitionCost)
    current: OperatingPoint | None = None

    def __post_init__(self) -> None:
        if self.current is None:
            self.current = self.initial

    def step(
        self,
        op: OperatingPoint,
        *,
        ledger: EnergyLedger | None = None,
        key: str = "(dvfs)",
        leak_w: float = 0.0,
    ) -> TransitionCost:
        """Move to ``op``; return (and accumulate) the transition cost."""
        cost = TransitionCost() if self.current is None else self.model.cost(self.current, op)
        self.current = op
        self.total = self.total + cost
        if ledger is not None and cost.transitions:
            ledger.charge("dvfs", cost.energy_j + leak_w * cost.stall_s, key)
        return cost

    def reset(self) -> None:
        """Forget the history (next step starts from ``initial``)."""
        self.total = TransitionCost()
        self.current = self.initial

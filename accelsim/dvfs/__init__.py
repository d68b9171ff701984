"""DVFS: policies that pick an operating point per GEMM context, and transition costs.

Public API: :class:`Policy` (``decide(ctx) -> OperatingPoint``, ``observe(ctx, detections,
macs)``), :func:`parse_policy` (``"name:key=value,..."`` or a dict), the policies in
:mod:`accelsim.dvfs.policies`, :class:`SensitivityProfile` / :func:`load_profile` for DRIFT's
block x timestep table, and :class:`TransitionModel` / :class:`TransitionTracker` for the cost
of changing the operating point between consecutive GEMMs.
"""

from accelsim.dvfs.policies import (
    MODES,
    POLICIES,
    ClosedLoopPolicy,
    DriftPolicy,
    DvfsSpace,
    GuardbandPolicy,
    NominalPolicy,
    Policy,
    ThunderVoltPolicy,
    TimestepPolicy,
    UniformPolicy,
    parse_policy,
)
from accelsim.dvfs.profile import ProfileCell, SensitivityProfile, load_profile
from accelsim.dvfs.transition import (
    REGULATORS,
    TransitionCost,
    TransitionModel,
    TransitionTracker,
    transition_model,
)

__all__ = [
    "MODES",
    "POLICIES",
    "REGULATORS",
    "ClosedLoopPolicy",
    "DriftPolicy",
    "DvfsSpace",
    "GuardbandPolicy",
    "NominalPolicy",
    "Policy",
    "ProfileCell",
    "SensitivityProfile",
    "ThunderVoltPolicy",
    "TimestepPolicy",
    "TransitionCost",
    "TransitionModel",
    "TransitionTracker",
    "UniformPolicy",
    "load_profile",
    "parse_policy",
    "transition_model",
]

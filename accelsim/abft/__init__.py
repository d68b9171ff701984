"""Checksum ABFT for int8 x int8 -> int32 GEMMs: encode, verify, locate, correct, classify.

Public API: :class:`AbftChecker` (``check(A, B, C, ctx, op=...) -> AbftResult``),
:class:`AbftConfig` and :func:`abft_config` (presets classic, drift, realm, detect), the pure
checksum functions in :mod:`accelsim.abft.checksum`, the classifiers in
:mod:`accelsim.abft.classify` and the cost model in :mod:`accelsim.abft.cost`.
"""

from accelsim.abft.checker import (
    ABFT_PRESETS,
    AbftChecker,
    AbftConfig,
    AbftResult,
    Action,
    abft_config,
)
from accelsim.abft.checksum import Checksums, Location, Syndromes, encode, locate, syndromes
from accelsim.abft.classify import REALM_BMM, REALM_LINEAR, Classification, RealmParams
from accelsim.abft.cost import AbftCost, check_cost

__all__ = [
    "ABFT_PRESETS",
    "REALM_BMM",
    "REALM_LINEAR",
    "AbftChecker",
    "AbftConfig",
    "AbftCost",
    "AbftResult",
    "Action",
    "Checksums",
    "Classification",
    "Location",
    "RealmParams",
    "Syndromes",
    "abft_config",
    "check_cost",
    "encode",
    "locate",
    "syndromes",
]

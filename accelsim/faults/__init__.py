"""accelsim.faults: fault models behind one small interface, and the activation-clipping guard.

See :mod:`accelsim.faults.base` for the hook protocol, :mod:`accelsim.faults.bits` for the
per-format tensor conventions and exact bit flips.
"""

from accelsim.faults.base import FORMATS, FaultLog, FaultModel, FaultRecord
from accelsim.faults.bits import FORMAT_BITS, flip_bits
from accelsim.faults.clipping import ActivationClipping
from accelsim.faults.models import (
    BitFlip,
    RandomValues,
    RowColumnFault,
    SingleValue,
    StuckAt,
    TimingErrors,
    apply_hooks,
    sample_bits,
)
from accelsim.faults.spec import fault_from_dict, parse_fault_spec
from accelsim.faults.targeting import Target

__all__ = [
    "FORMATS",
    "FORMAT_BITS",
    "ActivationClipping",
    "BitFlip",
    "FaultLog",
    "FaultModel",
    "FaultRecord",
    "RandomValues",
    "RowColumnFault",
    "SingleValue",
    "StuckAt",
    "Target",
    "TimingErrors",
    "apply_hooks",
    "fault_from_dict",
    "flip_bits",
    "parse_fault_spec",
    "sample_bits",
]

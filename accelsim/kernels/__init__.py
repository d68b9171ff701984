"""numba kernels (plain arrays in, no validation; the wrappers validate).

numba's on-disk cache (``cache=True``) is invalidated only when the *cached function's own*
source file changes, not when a function it calls from another module changes. The systolic
kernels inline the MAC model of ``_mac.py``, so a stale cache would silently keep an old model.
:func:`_drop_stale_caches` therefore stamps the kernel sources and removes the cached machine
code of this package whenever any kernel source differs from the stamp.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_KERNEL_SOURCES = ("_mac.py", "_systolic.py", "_fast.py", "_supply.py")


def _drop_stale_caches() -> None:
    here = Path(__file__).parent
    cache_dir = here / "__pycache__"
    digest = hashlib.sha256()
    for name in _KERNEL_SOURCES:
        path = here / name
        if path.exists():
            digest.update(path.read_bytes())
    stamp = digest.hexdigest()
    stamp_file = cache_dir / "kernels.stamp"
    try:
        if stamp_file.exists() and stamp_file.read_text() == stamp:
            return
        for cached in list(cache_dir.glob("*.nbi")) + list(cache_dir.glob("*.nbc")):
            cached.unlink(missing_ok=True)
        cache_dir.mkdir(exist_ok=True)
        stamp_file.write_text(stamp)
    except OSError:
        # A read-only install: numba falls back to its user-wide cache directory; nothing to do.
        return


_drop_stale_caches()

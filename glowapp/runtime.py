"""Process-wide settings that make CPU training and sampling fast: glibc's allocator thresholds.

A flow step allocates and frees the same few-MiB activation buffers every iteration. With glibc's
defaults, blocks that large are ``mmap``-ed and given back to the kernel on ``free``, or trimmed
off the heap top, so every step page-faults (and the kernel zero-fills) them again: on a small
VM that cost a third to a half of evaluation and sampling time (``bench/benchmark.py`` measures
it: the ``glibc_malloc`` variant). Keeping freed memory in the heap removes it; the price is that
the process's resident size stays at its peak instead of shrinking between steps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

#: ``mallopt`` parameters (glibc's ``malloc.h``).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: The largest mmap threshold glibc accepts on 64-bit (``HEAP_MAX_SIZE / 2``): blocks up to 32 MiB
#: come from the heap and are reused.
MMAP_THRESHOLD_BYTES = 32 * 2**20
#: Free memory at the heap top is returned to the kernel only beyond 1 GiB.
TRIM_THRESHOLD_BYTES = 2**30
#: Set to ``0`` to keep glibc's default allocator behaviour.
ENV_SWITCH = "GLOWAPP_TUNE_MALLOC"


@functools.cache
def tune_malloc() -> bool:
    """Keep freed blocks of up to 32 MiB in the heap (glibc ``mallopt``); True if now in effect.

    Idempotent. A no-op returning False off Linux/glibc, or when ``GLOWAPP_TUNE_MALLOC=0``.
    Called by glowapp's entry points (the ``glowapp`` command, ``bench/``); a program that
    drives :class:`glowapp.GlowModule` itself can call it once at start-up.
    """
    if os.environ.get(ENV_SWITCH, "1") == "0" or not sys.platform.startswith("linux"):
        return False
    libc = _glibc()
    return (
        libc is not None
        and bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
        and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    )


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    # musl and other C libraries have no mallopt; glibc reports itself through this function.
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc

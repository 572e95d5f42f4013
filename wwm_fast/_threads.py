"""The thread-count policy of every stage (one place; the kernels apply the same in C++).

``num_threads=-1`` means every core, any positive count is used as given, and both are capped at
``MAX_THREADS`` (csrc/parallel.h's kMaxThreads, read from the native modules, which cap again
whatever reaches them). 0, values below -1, values above the cap and non-integers are errors.
Kernels may still use fewer threads than resolved when the input is too small to share.

This module only validates and resolves numbers: it starts no threads and imports nothing but the
native module that carries the constant.
"""

from __future__ import annotations

import numbers
import os

from . import _check_build  # noqa: F401
from ._wordpiece import MAX_THREADS

__all__ = ["MAX_THREADS", "check_num_threads", "resolve_num_threads"]


def check_num_threads(value, name: str = "num_threads") -> int:
    """``value`` as an int after checking it: -1 (every core) or 1..MAX_THREADS; -1 is kept.

    TypeError for a non-integer (a bool included), ValueError naming ``name`` and the value
    otherwise.
    """
    # numbers.Integral: int and numpy's integers (numpy registers them; not numpy.bool_)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if value == 0 or value < -1 or value > MAX_THREADS:
        raise ValueError(f"{name} must be -1 (all cores) or in [1, {MAX_THREADS}], got {value}")
    return value


def resolve_num_threads(value, name: str = "num_threads") -> int:
    """The number of threads to run: ``check_num_threads``, then -1 -> the machine's cores
    (``os.cpu_count()``, what the kernels' ``std::thread::hardware_concurrency`` also counts),
    capped at MAX_THREADS."""
    value = check_num_threads(value, name)
    if value == -1:
        value = min(os.cpu_count() or 1, MAX_THREADS)
    return value

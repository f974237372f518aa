"""Garbage-collector settings for a service process.

Decoding a large prefetch allocates hundreds of thousands of containers; with the default thresholds the
cyclic collector runs dozens of times per request and doubles the cost of a 5,000-resource request.
The request path creates no reference cycles that matter (refcounting frees its data), so collections
are made rarer, and everything alive after start-up (modules, knowledge, models) is frozen out of them.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 200_000

_tuned = False


def tune_gc() -> None:
    """Idempotent: freeze what exists now and raise the collection thresholds, once per process."""
    global _tuned
    if _tuned:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, 20, 50)
    _tuned = True

"""Garbage-collector settings for a service process.

Decoding a large prefetch allocates hundreds of thousands of containers; with the default thresholds the
cyclic collector runs dozens of times per request and doubles the cost of a 5,000-resource request.
Our request path creates no reference cycles (refcounting frees its data), so automatic collections are
made rare, and everything alive after start-up (modules, knowledge, models) is frozen out of them.

The libraries under it do leave a little cyclic garbage per request (werkzeug's URL matcher is a
recursive closure: about eight small objects a call). Left to the high threshold, some 25,000 requests of
it piled up before a collection, and a worker's memory grew by ~20 MiB before it levelled off. So the
heap is also collected *between* requests, every ``COLLECT_EVERY`` requests, and never in the middle of
decoding a large record.

Every generation, not only the young one (issue 24): garbage that is still referenced when an automatic
young collection runs mid-request (a request's cycles are alive until it ends) is promoted, and the old
generations were collected so rarely (after 20 and 1,000 young collections) that a worker serving new
patients grew ~4.3 MiB per 1,000 requests without levelling off (101 → 185 MiB over 15,000 requests; the
soak in ``bench``). Collecting all generations costs ~3–8 ms every 500 requests (only the objects made
since start-up are scanned: the rest is frozen), after a response has been sent; the same soak then grew
1.9 MiB from 1,000 to 5,000 requests instead of 18.6.
"""

from __future__ import annotations

import gc
import itertools

GEN0_THRESHOLD = 200_000
COLLECT_EVERY = 500  # requests

_tuned = False
_requests = itertools.count(1)  # next() on it is atomic under the GIL: safe across a worker's threads


def tune_gc() -> None:
    """Idempotent: freeze what exists now and raise the collection thresholds, once per process."""
    global _tuned
    if _tuned:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, 20, 50)
    _tuned = True


def collect_between_requests() -> bool:
    """Call when a request has ended: every ``COLLECT_EVERY``-th call collects every generation.
    Whether it collected."""
    if next(_requests) % COLLECT_EVERY or not gc.isenabled():
        return False
    gc.collect()
    return True

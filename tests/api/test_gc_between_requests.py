"""Cyclic garbage is collected between requests, not only when the raised GC threshold is reached.

Werkzeug's URL matcher leaves a few cyclic objects per request; with the collector's threshold raised for
large records (``GEN0_THRESHOLD``) they piled up for ~25,000 requests and a worker's memory grew by
~20 MiB (issue 13, the soak in ``bench``). The app now collects after every ``COLLECT_EVERY``-th response
has been sent, every generation: garbage promoted out of the young one made a worker serving new patients
grow ~4.3 MiB per 1,000 requests (issue 24).
"""

from __future__ import annotations

import gc
import itertools
import weakref

import pytest

from cds_hooks.process import gc_tuning


class _Node:
    """A weak-referenceable object that can sit in a reference cycle."""

    other: object


def _cyclic_garbage() -> weakref.ref:
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # only the cyclic collector can free these
    return weakref.ref(a)


@pytest.fixture
def no_automatic_collection(monkeypatch):
    """Only the app's own collection may free the cycle during the test."""
    thresholds = gc.get_threshold()
    gc.set_threshold(10**9, 10**9, 10**9)
    monkeypatch.setattr(gc_tuning, "COLLECT_EVERY", 3)
    monkeypatch.setattr(gc_tuning, "_requests", itertools.count(1))
    yield
    gc.set_threshold(*thresholds)


def test_every_nth_response_collects_cyclic_garbage_once_sent(client, no_automatic_collection):
    gc.collect()
    garbage = _cyclic_garbage()
    for _ in range(2):
        client.get("/healthz").close()
    assert garbage() is not None, "collected before the COLLECT_EVERY-th request"
    response = client.get("/healthz")
    assert response.status_code == 200
    response.close()  # the server closes the body once it has been sent: that is when it collects
    assert garbage() is None


def test_collecting_respects_a_disabled_collector(no_automatic_collection):
    gc.disable()
    try:
        assert [gc_tuning.collect_between_requests() for _ in range(3)] == [False, False, False]
    finally:
        gc.enable()
    assert [gc_tuning.collect_between_requests() for _ in range(3)] == [False, False, True]


def test_garbage_promoted_to_the_old_generation_is_collected_too(client, no_automatic_collection):
    """A request's cycles are alive while it runs; a young collection then promotes them, and they
    become garbage in an old generation that a young collection never scans."""
    gc.collect()
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    garbage = weakref.ref(a)
    gc.collect(0)
    gc.collect(1)  # alive through both: now in the oldest generation
    del a, b
    gc.collect(0)
    assert garbage() is not None, "a young collection does not reach it"
    for _ in range(3):
        client.get("/healthz").close()
    assert garbage() is None

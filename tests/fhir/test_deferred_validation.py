"""The whole-resource check behind the "set aside" WARNING runs off the request path: after the
response, while the process is idle, through a bounded queue that never makes a request wait."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from cds_hooks.fhir import deferred_validation as dv
from cds_hooks.fhir.resource_index import DEFERRED, ResourceIndex, validate, validate_read


def statement(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "id": "ms-1",
        "status": "active",
        "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": {"text": "Hypurin Porcine Isophane"},
        **extra,
    }


def set_aside_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]


def test_the_request_path_checks_only_what_the_rules_read():
    invalid_note = statement(note="patient says fine")  # Annotation[] in R4; never read
    result, unread = validate_read(invalid_note)
    assert result.problem is None and result.set_aside == () and unread
    # the whole-resource check still finds the element, for the warning
    assert [name for name, _ in validate(invalid_note).set_aside] == ["note"]
    # an invalid element the rules read makes the resource unusable on the request path itself
    bad_status = statement(status=["active"])
    assert validate_read(bad_status)[0].problem == validate(bad_status).problem is not None
    assert "status" in str(validate_read(bad_status)[0].problem)


def test_the_warning_still_appears_after_the_response(caplog):
    caplog.set_level(logging.WARNING)
    resource = statement(note="patient says fine")
    dv.begin_request()
    try:
        assert ResourceIndex([resource]).problem(resource) is None
        assert DEFERRED.drain(timeout=10)
        assert set_aside_warnings(caplog) == []  # nothing checked while the request runs
    finally:
        dv.flush_after_response()
    assert DEFERRED.drain(timeout=10)
    assert set_aside_warnings(caplog) == [
        "MedicationStatement: set aside note (not valid FHIR R4: list_type); "
        "the rules read only their own elements"
    ]


def test_outside_a_request_the_warning_is_logged_at_once(caplog):
    caplog.set_level(logging.WARNING)
    resource = statement(note="patient says fine")
    assert ResourceIndex([resource]).problem(resource) is None
    assert len(set_aside_warnings(caplog)) == 1  # no request to keep waiting: checked in place


def test_a_resource_with_only_read_elements_is_not_checked_again(caplog):
    caplog.set_level(logging.WARNING)
    checked: list[dict[str, Any]] = []
    validator = dv.DeferredValidator(checked.append)
    resource = statement()
    result, unread = validate_read(resource)
    assert result.problem is None and not unread  # so ResourceIndex.validation defers nothing
    assert validator.drain() and checked == []


def test_the_queue_is_bounded_and_submit_never_waits():
    release = threading.Event()
    started = threading.Event()

    def slow_check(resource: dict[str, Any]) -> None:
        started.set()
        release.wait(10)

    validator = dv.DeferredValidator(slow_check, max_pending=2)
    try:
        assert validator.submit(statement(id="a"))
        assert started.wait(10)  # the thread holds "a"; the queue is empty again
        accepted = [validator.submit(statement(id=str(i))) for i in range(5)]
        # a full queue refuses at once (this would hang if submit waited for room)
        assert accepted == [True, True, False, False, False]
        assert validator.dropped == 3 and validator.pending() == 2
    finally:
        release.set()
    assert validator.drain(timeout=10) and validator.pending() == 0


def test_checks_wait_while_a_request_is_in_flight():
    checked = threading.Event()
    validator = dv.DeferredValidator(lambda resource: checked.set())
    dv.begin_request()
    try:
        assert validator.submit(statement())  # queued at once (another request's resource)...
        assert not checked.wait(0.3)  # ...but not checked while this request is in flight
    finally:
        dv.flush_after_response()
    assert checked.wait(10)


def test_a_failing_check_does_not_end_the_thread(caplog):
    seen: list[str] = []

    def check(resource: dict[str, Any]) -> None:
        if resource["id"] == "boom":
            raise ValueError("boom")
        seen.append(resource["id"])

    validator = dv.DeferredValidator(check)
    validator.submit(statement(id="boom"))
    validator.submit(statement(id="fine"))
    assert validator.drain(timeout=10)
    assert seen == ["fine"]
    assert any("deferred FHIR validation failed" in r.getMessage() for r in caplog.records)


def test_the_checks_keep_to_their_cpu_budget_and_count_what_they_skip():
    """Past its CPU budget the thread skips resources (counted as dropped) instead of spending a busy
    worker's CPU on a diagnostic; with budget left, every resource is checked."""
    checked: list[str] = []

    def costly_check(resource: dict[str, Any]) -> None:
        started = time.thread_time()
        while time.thread_time() - started < 0.02:  # 20 ms of CPU
            pass
        checked.append(resource["id"])

    validator = dv.DeferredValidator(costly_check, cpu_share=0.0, cpu_burst_s=0.05)
    for i in range(6):
        assert validator.submit(statement(id=str(i)))
    assert validator.drain(timeout=10)
    # 0.05 s of budget: the 1st, 2nd and 3rd checks start with budget left (20, 40, 60 ms spent)
    assert checked == ["0", "1", "2"] and validator.dropped == 3

    generous = dv.DeferredValidator(costly_check, cpu_share=1.0, cpu_burst_s=1.0)
    checked.clear()
    for i in range(6):
        generous.submit(statement(id=str(i)))
    assert generous.drain(timeout=10)
    assert checked == [str(i) for i in range(6)] and generous.dropped == 0

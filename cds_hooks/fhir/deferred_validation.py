"""The whole-resource FHIR check that feeds the "set aside" warning, done off the request path.

On the request path a cited resource is validated on the elements the rules read only
(``resource_index.validate_read``): that decides whether the rules may use it. Whether one of its
*other* elements is invalid changes no card; it only earns a WARNING naming the element, so operators
learn that an EHR sends malformed data. That check models the whole resource (meta, text, identifiers,
encounter…), which costs more than the rules' part, so it runs in one background thread per process:
the request hands it the resource and goes on, and the hand-over happens once the response is ready
(``flush_after_response``, on Flask's request teardown). Outside an HTTP request (the command line,
``cds-hooks screen``, tests) the check runs where it always did, so those log every warning in order.

Idle time only, bounded and never blocking: the thread checks a resource only while no request is in
flight in its process (between resources it yields, so a request arriving waits for at most one
resource's check), at most ``MAX_PENDING`` resources wait, and when a saturated worker produces more the
extra ones are not checked (counted in ``dropped``, reported in one WARNING per minute at most). A
worker that is never idle thus spends nothing on it, instead of queueing work behind its requests.

Bounded in CPU too: the checks may use ``CPU_SHARE`` of one core over time (a token bucket of CPU
seconds, refilled at that rate, holding at most ``CPU_BURST_S``). A worker answering a new patient
every few milliseconds would otherwise spend about a fifth of its CPU on a diagnostic; past the budget a
resource is not checked and is counted in ``dropped`` like a full queue. An EHR that sends a malformed
element sends it again and again, so a sample of its resources still earns the warning within seconds,
and a worker that is not busy (or a test) checks every resource.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

Resource = dict[str, Any]

log = logging.getLogger("cds_hooks.fhir.resource_index")  # the warning keeps its logger name

MAX_PENDING = 64
CPU_SHARE = 0.02  # of one core, over time, for the checks of one process
CPU_BURST_S = 0.25  # CPU seconds the checks may take at once after a quiet spell
DROP_REPORT_INTERVAL_S = 60.0


class DeferredValidator:
    """One daemon thread running ``check`` on queued resources; ``submit`` never waits."""

    def __init__(
        self,
        check: Callable[[Resource], None],
        max_pending: int = MAX_PENDING,
        cpu_share: float = CPU_SHARE,
        cpu_burst_s: float = CPU_BURST_S,
    ) -> None:
        self._check = check
        self._share, self._burst = cpu_share, cpu_burst_s
        self._tokens, self._refilled = cpu_burst_s, time.monotonic()  # CPU seconds the checks may spend
        self._queue: queue.Queue[Resource] = queue.Queue(maxsize=max_pending)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self._dropped_reported = 0
        self._last_report = 0.0

    def submit(self, resource: Resource) -> bool:
        """Queue one resource for the whole check; False (and counted) when the queue is full."""
        self._ensure_thread()
        try:
            self._queue.put_nowait(resource)
        except queue.Full:
            with self._lock:
                self.dropped += 1
            return False
        return True

    def check_now(self, resource: Resource) -> None:
        """The same check in the caller's thread (no request to keep waiting)."""
        self._check(resource)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every queued resource is checked (tests, and a command's exit); True if done."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:  # woken by the last task_done, not by polling
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def pending(self) -> int:
        return self._queue.qsize()

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="deferred-validation", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            resource = self._queue.get()
            with _idle:  # requests first: wait until this process is idle (woken, not polling)
                while _in_flight[0] > 0:
                    _idle.wait()
            try:
                if self._within_budget():
                    started = time.thread_time()
                    self._check(resource)
                    self._tokens -= time.thread_time() - started
                else:
                    with self._lock:
                        self.dropped += 1
            except Exception:  # a check that fails must not end the thread; the reason, never the data
                log.exception("deferred FHIR validation failed")
            finally:
                self._queue.task_done()
            self._report_drops()
            time.sleep(0)  # let a request that arrived meanwhile take the GIL

    def _within_budget(self) -> bool:
        """Refill the CPU budget for the time since the last check; whether any of it is left."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._share)
        self._refilled = now
        return self._tokens > 0

    def _report_drops(self) -> None:
        now = time.monotonic()
        with self._lock:
            new = self.dropped - self._dropped_reported
            if not new or now - self._last_report < DROP_REPORT_INTERVAL_S:
                return
            self._dropped_reported, self._last_report = self.dropped, now
        log.warning(
            "%d resource(s) not checked for invalid elements the rules do not read (queue full or CPU "
            "budget spent)",
            new,
        )


# Resources set aside during the current HTTP request, handed over once its response is sent, and the
# number of requests in flight in this process (a one-item list: updated under ``_scope_lock``).
_request_scope = threading.local()
_in_flight = [0]
_scope_lock = threading.Lock()
_idle = threading.Condition(_scope_lock)  # notified when the last request in flight is answered


def begin_request() -> None:
    """From now until ``flush_after_response`` this thread's deferred checks wait for the response,
    and the background thread for the process to be idle."""
    if getattr(_request_scope, "pending", None) is None:
        with _scope_lock:
            _in_flight[0] += 1
    _request_scope.pending = []


def defer(resource: Resource, validator: DeferredValidator) -> None:
    """Inside an HTTP request: hand ``resource`` to ``validator`` once the response is ready. Outside
    one (the command line, a screen, tests) there is no response to wait for: checked here and now,
    so a batch run logs every warning as it did."""
    pending: list[tuple[Resource, DeferredValidator]] | None = getattr(_request_scope, "pending", None)
    if pending is None:
        validator.check_now(resource)
    else:
        pending.append((resource, validator))


def flush_after_response() -> None:
    """Submit what this thread's request deferred (request teardown: the response is ready)."""
    pending = getattr(_request_scope, "pending", None)
    if pending is None:
        return
    _request_scope.pending = None
    with _idle:
        _in_flight[0] -= 1
        if _in_flight[0] == 0:
            _idle.notify_all()
    for resource, validator in pending:
        validator.submit(resource)


def drain_at_exit(validator: DeferredValidator, timeout: float = 2.0) -> None:
    """A command that exits right after evaluating still logs its warnings."""
    atexit.register(validator.drain, timeout)

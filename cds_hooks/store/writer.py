"""Request-path writes off the request path: the card log and the audit trail are queued and written
in batches by one thread per worker process.

The queue is bounded; when it is full the request writes its own item (back-pressure, nothing is
dropped). Queuing wakes nobody: the thread wakes every ``interval`` seconds, writes what has gathered
in one transaction per kind, and ends after ``IDLE_EXIT`` seconds with nothing to do (the next item
starts it again). ``flush`` wakes it at once and waits; at process exit it writes what is left
(``close``, registered with ``atexit`` and called by gunicorn's ``worker_exit``). What SIGKILL can
lose: the rows queued since the last write, at most ``interval`` seconds of card-log and audit rows.
Feedback is never queued: it is written synchronously, in the request, because snooze and analytics
rest on it.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Job = Callable[[list[Any]], None]  # writes one batch of items of one kind
FLUSH = "__flush__"
IDLE_EXIT = 30.0


class BatchWriter:
    def __init__(self, jobs: dict[str, Job], *, interval: float = 0.1, capacity: int = 10_000):
        self.jobs = jobs
        self.interval = interval
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=capacity)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)

    def put(self, kind: str, item: Any) -> None:
        """Queue one item; writes it in this thread when the queue is full or the writer is closed."""
        if self._closed:
            self._write(kind, [item])
            return
        try:
            self._queue.put_nowait((kind, item))
        except queue.Full:
            log.warning("write queue full: writing in the request thread")
            self._write(kind, [item])
            return
        self._ensure_thread()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued before this call has been written."""
        done = threading.Event()
        try:
            self._queue.put((FLUSH, done), timeout=timeout)
        except queue.Full:
            return
        if self._ensure_thread():
            self._wake.set()
            done.wait(timeout)
        else:
            self._drain()

    def close(self) -> None:
        """Write what is queued and stop the thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread if self._pid == os.getpid() else None
        self._wake.set()
        if thread is not None:
            thread.join(10)
        self._drain()

    # ------------------------------------------------------------------ the thread

    def _ensure_thread(self) -> bool:
        """Start the writer thread if this process has none running; False once closed."""
        with self._lock:
            if self._closed:
                return False
            if self._pid != os.getpid():  # a fork copied the object but not its thread
                self._pid, self._thread = os.getpid(), None
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cds-hooks-writer", daemon=True)
                self._thread.start()
            return True

    def _run(self) -> None:
        idle = 0.0
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._drain():
                idle = 0.0
            else:
                idle += self.interval
            with self._lock:
                # Checked under the lock after the queue was seen empty: an item queued meanwhile
                # either is seen here or finds no thread and starts one.
                if self._closed or (idle >= IDLE_EXIT and self._queue.empty()):
                    self._thread = None
                    return

    def _drain(self) -> bool:
        """Write everything queued, grouped by kind, in order; then release flush waiters."""
        batches: dict[str, list[Any]] = {}
        waiters: list[threading.Event] = []
        while True:
            try:
                kind, item = self._queue.get_nowait()
            except queue.Empty:
                break
            if kind == FLUSH:
                waiters.append(item)
            else:
                batches.setdefault(kind, []).append(item)
        for kind, batch in batches.items():
            self._write(kind, batch)
        for waiter in waiters:
            waiter.set()
        return bool(batches or waiters)

    def _write(self, kind: str, batch: list[Any]) -> None:
        try:
            self.jobs[kind](batch)
        except Exception:  # a database outage must not kill the writer; the rows are lost, loudly
            log.exception("could not write %d %s row(s)", len(batch), kind)

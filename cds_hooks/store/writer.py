"""Request-path writes off the request path: the card log and the audit trail are queued and written
in batches by one thread per worker process.

The queue is bounded; when it is full the request writes its own batch (back-pressure, nothing is
dropped). The thread sleeps while the queue is empty; an item wakes it, it gathers what arrives in the
next ``interval`` seconds and writes it in one transaction; at process exit it writes what is left
(``close``, registered with ``atexit`` and called by gunicorn's ``worker_exit``). What SIGKILL can
lose: the rows queued since the last write, i.e. at most ``interval`` seconds of card-log and audit
rows. Feedback is never queued: it is written synchronously, in the request, because snooze and
analytics rest on it.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("cds_hooks.store")

Job = Callable[[list[Any]], None]  # writes one batch of items of one kind
FLUSH = "__flush__"


def _is_flush(entry: tuple[str, Any] | None) -> bool:
    return entry is not None and entry[0] == FLUSH


class BatchWriter:
    def __init__(
        self, jobs: dict[str, Job], *, interval: float = 0.2, capacity: int = 10_000, batch: int = 500
    ):
        self.jobs = jobs
        self.interval = interval
        self.batch = batch
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._closed = False
        self._flushed = threading.Condition()
        atexit.register(self.close)

    def put(self, kind: str, item: Any) -> None:
        """Queue one item; writes it in this thread when the queue is full or the writer is closed."""
        if self._closed:
            self._write(kind, [item])
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait((kind, item))
        except queue.Full:
            log.warning("write queue full: writing in the request thread")
            self._write(kind, [item])

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued before this call has been written."""
        if self._thread is None or not self._thread.is_alive():
            self._drain()
            return
        done = threading.Event()
        try:
            self._queue.put((FLUSH, done), timeout=timeout)
        except queue.Full:
            return
        done.wait(timeout)

    def close(self) -> None:
        """Write what is queued and stop the thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread if self._pid == os.getpid() else None
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(10)
        self._drain()

    # ------------------------------------------------------------------ the thread

    def _ensure_thread(self) -> None:
        # A fork (gunicorn preload) copies the object but not the thread: start one per process.
        if self._pid == os.getpid() and self._thread is not None:
            return
        with self._lock:
            if self._pid != os.getpid() or self._thread is None:
                if self._pid != os.getpid():
                    self._queue = queue.Queue(maxsize=self._queue.maxsize)
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="cds-hooks-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        """Idle until an item arrives, then gather for up to ``interval`` seconds and write the batch."""
        stop = False
        while not stop:
            items = [self._queue.get()]
            deadline = time.monotonic() + self.interval
            while len(items) < self.batch and items[-1] is not None and not _is_flush(items[-1]):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    items.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
            stop = self._process(items)

    def _drain(self) -> None:
        items: list[tuple[str, Any] | None] = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if items:
            self._process(items)

    def _process(self, items: list[tuple[str, Any] | None]) -> bool:
        """Write the items grouped by kind, in order; then release any flush waiters."""
        stop = False
        batches: dict[str, list[Any]] = {}
        waiters: list[threading.Event] = []
        for entry in items:
            if entry is None:
                stop = True
            elif entry[0] == FLUSH:
                waiters.append(entry[1])
            else:
                batches.setdefault(entry[0], []).append(entry[1])
        for kind, batch in batches.items():
            self._write(kind, batch)
        for waiter in waiters:
            waiter.set()
        return stop

    def _write(self, kind: str, batch: list[Any]) -> None:
        try:
            self.jobs[kind](batch)
        except Exception:  # a database outage must not kill the writer; the rows are lost, loudly
            log.exception("could not write %d %s row(s)", len(batch), kind)

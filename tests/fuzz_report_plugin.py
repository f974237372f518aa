"""The fuzz suite's summary line (`fuzz: N generated cases, 0 server errors (5xx)`), also under xdist.

With pytest-xdist the cases run in worker processes: each worker hands its counts to the controller
(``workeroutput``), which adds them up and prints the one line. Registered from ``tests/conftest.py``
because the controller never loads ``tests/fuzz/conftest.py`` (it does not collect).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fuzz.counter import COUNTER

KEY = "fuzz_statuses"


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # in an xdist worker: report to the controller
        workeroutput[KEY] = {str(status): n for status, n in COUNTER.statuses.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """In the xdist controller: add up what each worker counted."""
    for status, n in (getattr(node, "workeroutput", {}) or {}).get(KEY, {}).items():
        COUNTER.statuses[int(status)] += n


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if COUNTER.total:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(COUNTER.statuses.items()))
        terminalreporter.write_line(
            f"fuzz: {COUNTER.total} generated cases, {COUNTER.server_errors} server errors (5xx) [{statuses}]"
        )

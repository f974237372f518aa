"""Pytest plugin of the hazard log (issue 22 E15): the evidence a hazard names must run, not be skipped.

Two jobs, both keyed on the test ids of ``docs/safety/hazards.toml`` (ini option ``hazard_log``):

- At run time: when this session runs a test that a hazard names as its evidence and that test is skipped
  (a skip marker, ``pytest.skip()`` in the test or a fixture, an xfail), the session fails and the terminal
  summary lists the hazard and the reason. Tests the session does not run (``-k``, a sub-folder, a
  deselection) are not looked at, so partial runs are unaffected. Under pytest-xdist the controller
  receives every worker's reports and decides; workers do nothing.
- At collection (``--hazard-collect-out=FILE``, used by ``tests.safety.hazard_log``): writes every collected
  node id with the reason a skip or xfail marker would skip it on this machine (or null) as JSON.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from _pytest.skipping import evaluate_skip_marks, evaluate_xfail_marks

DEFAULT_HAZARD_LOG = "docs/safety/hazards.toml"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "hazard_log", "hazard log (TOML) whose test ids must not be skipped", default=DEFAULT_HAZARD_LOG
    )
    parser.addoption(
        "--hazard-collect-out",
        default=None,
        help="write the collected node ids and the skip marker that applies to each (JSON) to this file",
    )


def evidence_ids(path: Path) -> dict[str, list[str]]:
    """Test id -> ids of the hazards naming it. Lenient: the log's validation is the checker's job."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    named: dict[str, list[str]] = {}
    for hazard in data.get("hazard", []):
        for test_id in hazard.get("tests", []):
            named.setdefault(str(test_id), []).append(str(hazard.get("id", "?")))
    return named


def naming(named: dict[str, list[str]], nodeid: str) -> list[str]:
    """Hazards naming ``nodeid``, exactly or as its function without the parameters (all its cases)."""
    function = nodeid.split("[", 1)[0]
    found = list(named.get(nodeid, []))
    if function != nodeid:
        found += named.get(function, [])
    return found


def marker_skip_reason(item: pytest.Item) -> str | None:
    """Why a skip, skipif or xfail marker would keep ``item`` from showing anything here, else None."""
    skipped = evaluate_skip_marks(item)
    if skipped is not None:
        return f"skip marker: {skipped.reason or 'no reason given'}"
    xfail = evaluate_xfail_marks(item)
    if xfail is not None:
        return f"xfail marker: {xfail.reason or 'no reason given'}"
    return None


class EvidenceWatch:
    """Fails the session when a hazard's evidence was skipped in it (see the module docstring)."""

    def __init__(self, named: dict[str, list[str]]) -> None:
        self.named = named
        self.skipped: list[tuple[str, str, str]] = []  # (hazard ids, node id, reason)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.skipped:
            return
        hazards = naming(self.named, report.nodeid)
        if hazards:
            reason = getattr(report, "wasxfail", None)
            if reason is None and isinstance(report.longrepr, tuple):
                reason = str(report.longrepr[2])
            self.skipped.append((", ".join(hazards), report.nodeid, reason or "skipped"))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.skipped:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.skipped:
            return
        terminalreporter.section("hazard log: evidence skipped", red=True)
        for hazards, nodeid, reason in self.skipped:
            terminalreporter.line(f"{hazards}: {nodeid} was skipped ({reason}); a hazard's evidence must run")


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # an xdist worker: the controller sees its reports
    named = evidence_ids(config.rootpath / config.getini("hazard_log"))
    if named:
        config.pluginmanager.register(EvidenceWatch(named), "hazard-evidence-watch")


def pytest_collection_finish(session: pytest.Session) -> None:
    out = session.config.getoption("hazard_collect_out")
    if out:
        collected = {item.nodeid: marker_skip_reason(item) for item in session.items}
        Path(out).write_text(json.dumps(collected, indent=0), encoding="utf-8")

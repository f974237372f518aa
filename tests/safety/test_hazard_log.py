"""The hazard log's checker (issue 22 E15): the log names only tests that exist and run, its pages are
rendered from it, and every design-choice default is on the safety case's site review list.

The checker itself is tested on throw-away projects: a made-up test id, a skip marker, a skipif that
applies, a test skipped at run time (also under pytest-xdist) each make it fail, and a ``-k`` run that
leaves the skipped test out does not.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from tests.safety import hazard_log as log

DEMO_TESTS = """
import pytest


def test_runs():
    assert True


@pytest.mark.skip(reason="not today")
def test_skip_marker():
    assert True


@pytest.mark.skipif(True, reason="condition holds here")
def test_skipif_applies():
    assert True


@pytest.mark.skipif(False, reason="never")
def test_skipif_does_not_apply():
    assert True


@pytest.mark.xfail(reason="known bug")
def test_xfail_marker():
    assert False


@pytest.mark.parametrize("case", ["a", "b"])
def test_cases(case):
    assert case


def test_skips_at_run_time():
    pytest.skip("the server is not installed")
"""


def demo_project(tmp_path: Path, *test_names: str) -> Path:
    """A project whose hazard log names ``test_names`` of demo/test_demo.py (``DEMO_TESTS``)."""
    (tmp_path / "demo").mkdir(parents=True)
    (tmp_path / "demo" / "test_demo.py").write_text(DEMO_TESTS, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nhazard_log = docs/safety/hazards.toml\n", encoding="utf-8"
    )
    tests = ", ".join(f'"{name}"' for name in test_names)
    hazard = f"""
        [[hazard]]
        id = "H01"
        title = "Demo"
        description = "A demo hazard."
        causes = ["A cause."]
        effect = "An effect."
        harm = "A harm."
        initial = {{ severity = "Major", likelihood = "Medium" }}
        controls = ["A control."]
        code = ["demo/test_demo.py"]
        residual = {{ severity = "Major", likelihood = "Very low" }}
        tests = [{tests}]
    """
    (tmp_path / log.HAZARDS).parent.mkdir(parents=True)
    (tmp_path / log.HAZARDS).write_text(textwrap.dedent(hazard), encoding="utf-8")
    return tmp_path


def demo_id(name: str) -> str:
    return f"demo/test_demo.py::{name}"


def test_every_hazard_names_tests_that_pytest_collects_and_does_not_skip() -> None:
    """Issue 22 E15: each test id of docs/safety/hazards.toml is collected by pytest (parametrized ids
    included) and no skip or xfail marker applies to it on this machine; the log obeys its rules."""
    hazards = log.load_hazards(log.REPO / log.HAZARDS)
    assert len(hazards) >= 18 and all(h.tests for h in hazards)
    collected = log.collect([t for h in hazards for t in h.tests])
    assert log.evidence_problems(hazards, collected) == []


def test_the_pages_are_rendered_from_the_log() -> None:
    """Issue 22 E15: hazard-log.md and the safety case's generated blocks are what the TOML and
    knowledge/ give (`python -m tests.safety.hazard_log --write` after an edit)."""
    hazards = log.load_hazards(log.REPO / log.HAZARDS)
    assert (log.REPO / log.HAZARD_LOG_PAGE).read_text(encoding="utf-8") == log.render_log(hazards)
    case = (log.REPO / log.SAFETY_CASE_PAGE).read_text(encoding="utf-8")
    items = log.review_items(log.REPO / log.KNOWLEDGE)
    assert case == log.rendered_safety_case(case, hazards, items)


def test_every_design_choice_default_is_on_the_site_review_list() -> None:
    """Issue 22 E15: every threshold whose source says 'design choice' (or that it needs review) and every
    rule's snooze period is listed for the deploying site's clinical review, derived from knowledge/."""
    thresholds = tomllib.loads((log.REPO / "knowledge" / "thresholds.toml").read_text(encoding="utf-8"))
    design_choices = {name for name, t in thresholds.items() if "design choice" in t["source"].lower()}
    listed = log.review_names((log.REPO / log.SAFETY_CASE_PAGE).read_text(encoding="utf-8"))
    assert len(design_choices) >= 10
    assert design_choices - listed == set()
    assert listed == {item.name for item in log.review_items(log.REPO / log.KNOWLEDGE)}
    assert "snooze_days (animal-insulin-switch)" in listed
    assert "glucose_hyper_random" not in listed  # an ADA criterion, not a design choice


def test_the_checker_fails_on_a_made_up_id_and_on_skip_markers(tmp_path: Path, capsys, monkeypatch) -> None:
    """Issue 22 E15 mutation check: a hazard naming a test that does not exist, one with a skip marker,
    a skipif that applies or an xfail fails the check, each named; the others pass."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the demo needs no installed plugin
    good = [demo_id("test_runs"), demo_id("test_skipif_does_not_apply"), demo_id("test_cases")]
    bad = {
        demo_id("test_made_up"): "pytest collects no such test",
        demo_id("test_cases[c]"): "pytest collects no such test",
        demo_id("test_skip_marker"): "skip marker: not today",
        demo_id("test_skipif_applies"): "skip marker: condition holds here",
        demo_id("test_xfail_marker"): "xfail marker: known bug",
        "tests/safety/test_nowhere.py::test_x": "no file tests/safety/test_nowhere.py",
    }
    root = demo_project(tmp_path, *good, *bad)
    assert log.main(["--check", "--no-pages", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    for test_id, why in bad.items():
        assert why in out and test_id.split("::")[1].split("[")[0] in out, test_id
    assert "test_runs" not in out and "test_skipif_does_not_apply" not in out
    assert "6 problem(s)" in out

    control = demo_project(tmp_path / "good", *good)
    assert log.main(["--check", "--no-pages", "--root", str(control)]) == 0


def run_demo(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest on a demo project with only the plugins it needs (no entry-point autoload: faster)."""
    plugins = ["-p", "tests.safety.plugin", "-p", "xdist.plugin", "-p", "no:cacheprovider"]
    env = {**log._env(), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    command = [sys.executable, "-m", "pytest", *plugins, *args]
    return subprocess.run(
        command, cwd=root, capture_output=True, text=True, timeout=120, env=env, check=False
    )


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_session_that_skips_a_hazards_test_at_run_time_fails(tmp_path: Path, workers: list[str]) -> None:
    """Issue 22 E15: a test that a hazard names and that skips while running (pytest.skip in the test)
    fails the session, with the hazard named in the summary; under xdist the controller decides."""
    root = demo_project(tmp_path, demo_id("test_skips_at_run_time"), demo_id("test_runs"))
    result = run_demo(root, "demo", *workers, "-k", "runs or skips_at_run_time")
    assert result.returncode == 1, result.stdout
    assert "hazard log: evidence skipped" in result.stdout
    assert "H01: demo/test_demo.py::test_skips_at_run_time was skipped" in result.stdout
    assert "the server is not installed" in result.stdout


def test_a_partial_run_or_a_skip_no_hazard_names_does_not_fail(tmp_path: Path) -> None:
    """Issue 22 E15: ``-k`` leaving the hazard's test out, or skipped tests no hazard names, pass."""
    root = demo_project(tmp_path, demo_id("test_skips_at_run_time"))
    partial = run_demo(root, "demo", "-k", "runs")
    assert partial.returncode == 0, partial.stdout
    other = demo_project(tmp_path / "other", demo_id("test_runs"))
    unnamed = run_demo(other, "demo", "-k", "runs or skip_marker or skips_at_run_time")
    assert unnamed.returncode == 0, unnamed.stdout
    assert "2 skipped" in unnamed.stdout


BROKEN = {
    "residual above initial": ('residual = { severity = "Major", likelihood = "Very low" }',
                               'residual = { severity = "Catastrophic", likelihood = "High" }',
                               "residual risk 5 above the initial 3"),
    "residual of 4": ('residual = { severity = "Major", likelihood = "Very low" }',
                      'residual = { severity = "Catastrophic", likelihood = "Low" }',
                      "residual risk 4: Mandatory elimination"),
    "residual 3 unjustified": ('residual = { severity = "Major", likelihood = "Very low" }',
                               'residual = { severity = "Major", likelihood = "Medium" }',
                               "a residual risk of 3 needs a justification"),
    "unknown severity": ('severity = "Major", likelihood = "Medium"',
                         'severity = "Bad", likelihood = "Medium"',
                         "severity 'Bad' is not one of"),
    "missing field": ('harm = "A harm."\n', "", "missing fields ['harm']"),
    "code that does not exist": ('code = ["demo/test_demo.py"]', 'code = ["demo/gone.py"]',
                                 "code demo/gone.py does not exist"),
    "not a node id": ('tests = ["demo/test_demo.py::test_runs"]', 'tests = ["test_runs"]',
                      "'test_runs' is not a pytest node id"),
    "no test": ('tests = ["demo/test_demo.py::test_runs"]', "tests = []", "tests: needs a non-empty list"),
}  # fmt: skip


@pytest.mark.parametrize("broken", BROKEN, ids=list(BROKEN))
def test_the_log_refuses_a_hazard_that_breaks_its_rules(tmp_path: Path, broken: str) -> None:
    """Issue 22 E15: ratings follow the matrix and may only fall; 4 and 5 are never accepted; 3 needs a
    reason; every hazard has its fields, real code and at least one test id."""
    root = demo_project(tmp_path, demo_id("test_runs"))
    path = root / log.HAZARDS
    old, new, message = BROKEN[broken]
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(log.HazardLogError, match=message.replace("[", r"\[").replace("(", r"\(")):
        log.load_hazards(path, root)


def test_the_matrix_is_the_dcb0129_one() -> None:
    """Issue 22 E15: the 5×5 matrix rises with severity and likelihood, from 1 (minor, very low) to 5
    (catastrophic, very high); catastrophic at very low likelihood is 3, minor at very high is 3."""
    assert log.Risk("Minor", "Very low").rating == 1 and log.Risk("Catastrophic", "Very high").rating == 5
    assert log.Risk("Catastrophic", "Very low").rating == 3 and log.Risk("Minor", "Very high").rating == 3
    assert log.Risk("Major", "Medium").rating == 3 and log.Risk("Major", "High").rating == 4
    for row in log.MATRIX:
        assert list(row) == sorted(row)
    for column in zip(*log.MATRIX, strict=True):
        assert list(column) == sorted(column)

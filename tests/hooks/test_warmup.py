"""Warm-up at worker start (issue 13, target 3: no cold first call)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from cds_hooks.clinical.knowledge import default_knowledge, load_knowledge
from cds_hooks.hooks import warmup
from cds_hooks.hooks.dispatch import HOOKS


def test_warm_up_runs_every_hook_through_the_card_renderer():
    responses = warmup._run_hooks(default_knowledge(), datetime.now(UTC))
    assert len(responses) == len(HOOKS)
    # Each hook produced cards, so rules, card rendering and suggestion building were all exercised.
    assert all(r["cards"] for r in responses), [len(r["cards"]) for r in responses]


def test_a_failing_warm_up_is_logged_and_does_not_stop_the_worker(monkeypatch, caplog):
    def boom(*args, **kwargs):
        raise RuntimeError("bad knowledge")

    monkeypatch.setattr(warmup, "_run_hooks", boom)
    knowledge = load_knowledge()  # one this process has not warmed up with yet
    with caplog.at_level(logging.ERROR, logger="cds_hooks"):
        assert warmup.warm_up(knowledge) >= 0
    assert "warm-up failed" in caplog.text
    assert knowledge not in warmup._WARMED  # a failed warm-up is tried again by the next app


def test_warm_up_runs_once_per_knowledge(monkeypatch):
    calls = []
    monkeypatch.setattr(warmup, "_run_hooks", lambda knowledge, now: calls.append(knowledge))
    monkeypatch.setattr(warmup, "_run_examples", lambda knowledge, now: 0)
    first, second = load_knowledge(), load_knowledge()
    warmup.warm_up(first)
    warmup.warm_up(first)
    warmup.warm_up(second)
    assert calls == [first, second]


def test_create_app_warms_up_only_when_enabled(monkeypatch, tmp_path):
    from cds_hooks.app import create_app
    from tests.conftest import make_settings

    calls = []
    monkeypatch.setattr("cds_hooks.app.warm_up", lambda knowledge: calls.append(knowledge) or 0.0)
    create_app(make_settings(tmp_path / "a", warm_up=True))
    create_app(make_settings(tmp_path / "b", warm_up=False))
    assert len(calls) == 1


def test_warm_up_also_reads_every_example_patient():
    from cds_hooks.hooks.example_files import examples_dir

    patients = [p for p in examples_dir().glob("*.json") if p.name != "manifest.json"]
    assert warmup._run_examples(default_knowledge(), datetime.now(UTC)) == len(patients) > 30


def test_create_app_runs_the_card_memory_look_ups_once(monkeypatch, tmp_path):
    """Their SQL is compiled at start, not by the first request; read-only, for no real patient."""
    from cds_hooks.app import create_app
    from cds_hooks.store.recorder import Recorder
    from tests.conftest import make_settings

    calls = []
    monkeypatch.setattr(Recorder, "snoozes", lambda self, p, rules, since: calls.append(("snoozes", p)) or [])
    monkeypatch.setattr(
        Recorder, "acknowledged_select_cards", lambda self, p, rules, since: calls.append(("select", p)) or []
    )
    create_app(make_settings(tmp_path / "a", warm_up=True))
    assert calls == [("snoozes", warmup.PATIENT), ("select", warmup.PATIENT)]
    create_app(make_settings(tmp_path / "b", warm_up=False))
    assert len(calls) == 2

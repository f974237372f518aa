"""Chart-session reuse: a record's facts and findings are kept per worker under its content, the knowledge
version and the day; cards are still rendered, snoozed and de-duplicated on every call."""

from __future__ import annotations

import copy
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cds_hooks.api.runtime import EXTENSION
from cds_hooks.clinical.knowledge import default_knowledge, load_knowledge
from cds_hooks.clinical.rules import rule_input
from cds_hooks.fhir.resource_index import ResourceIndex
from cds_hooks.hooks.evaluation_cache import MEMORY_FACTOR, EvaluationCache, knowledge_version, record_digest
from cds_hooks.hooks.prefetch import prefetched
from tests.builders import SERVICE_URL, bundle, glucose, porcine_request, porcine_statement, topics
from tests.store.test_snooze import SWITCH, _card, _override

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
KNOWLEDGE = default_knowledge()


def record(pid: str = "p1", value: float = 48) -> dict[str, Any]:
    request = porcine_request(pid)
    request["prefetch"]["observations"] = bundle(glucose(pid, "glu-1", value, "2026-05-20T08:00:00Z"))
    return request


def index_of(request: dict[str, Any]) -> ResourceIndex:
    return ResourceIndex(
        [r for key, value in request["prefetch"].items() for r in prefetched(key, value) or ()]
    )


def cache(**bounds: int) -> EvaluationCache:
    return EvaluationCache(
        KNOWLEDGE, max_entries=bounds.get("max_entries", 16), max_bytes=bounds.get("max_bytes", 1 << 24)
    )


def test_the_same_record_on_the_same_day_reuses_facts_and_findings():
    c = cache()
    first, again = index_of(record()), index_of(record())  # decoded anew, as each call is
    assert c.attach(first, "p1", NOW) == "miss"
    x = rule_input(first, KNOWLEDGE, "p1", NOW)
    assert c.attach(again, "p1", NOW + timedelta(hours=3)) == "hit"
    assert rule_input(again, KNOWLEDGE, "p1", NOW + timedelta(hours=3)) is x  # not built again
    assert (c.stats.hits, c.stats.misses) == (1, 1)


def test_changed_content_another_patient_or_another_day_miss():
    c = cache()
    assert c.attach(index_of(record()), "p1", NOW) == "miss"
    assert c.attach(index_of(record(value=52)), "p1", NOW) == "miss"  # one value changed
    assert c.attach(index_of(record("p2")), "p2", NOW) == "miss"
    assert c.attach(index_of(record()), "p1", NOW + timedelta(days=1)) == "miss"  # the next day
    assert c.attach(index_of(record()), "p1", NOW) == "hit"


def test_a_resource_added_after_the_look_up_drops_the_memo():
    index = index_of(record())
    cache().attach(index, "p1", NOW)
    assert index.memo is not None
    index.add(porcine_statement("p1", "ms-2"))  # e.g. a Medication sent with a draft order
    assert index.memo is None


def test_another_knowledge_version_misses(tmp_path: Path):
    copy_dir = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE.root, copy_dir)
    thresholds = copy_dir / "thresholds.toml"
    thresholds.write_text(thresholds.read_text() + "\n# reviewed again\n")
    other = load_knowledge(copy_dir)
    assert knowledge_version(other) != knowledge_version(KNOWLEDGE)
    assert knowledge_version(load_knowledge(KNOWLEDGE.root)) == knowledge_version(KNOWLEDGE)

    c = cache()
    assert c.attach(index_of(record()), "p1", NOW) == "miss"
    c.version = knowledge_version(other)  # the same worker after a knowledge change
    assert c.attach(index_of(record()), "p1", NOW) == "miss"


def test_bounded_by_entries_and_by_memory():
    by_entries = cache(max_entries=2)
    for pid in ("a", "b", "c"):
        by_entries.attach(index_of(record(pid)), pid, NOW)
    assert len(by_entries) == 2

    size = len(str(record()))  # well under the estimate of its decoded size
    by_memory = cache(max_bytes=size)
    assert by_memory.attach(index_of(record()), "p1", NOW) == "miss"
    assert len(by_memory) == 0 and by_memory.bytes_used == 0  # too big to keep: not kept
    assert by_memory.attach(index_of(record()), "p1", NOW) == "miss"

    found = record_digest(index_of(record("a")))
    assert found is not None
    room = 3 * found[1] * MEMORY_FACTOR  # three records of this size ("a" to "e" are all alike)
    roomy = cache(max_bytes=room)
    for pid in ("a", "b", "c", "d", "e"):
        roomy.attach(index_of(record(pid)), pid, NOW)
    assert len(roomy) == 3 and roomy.bytes_used == room
    assert roomy.attach(index_of(record("e")), "e", NOW) == "hit"  # the latest are kept
    assert roomy.attach(index_of(record("a")), "a", NOW) == "miss"


def test_off_when_no_entries_are_allowed():
    c = cache(max_entries=0)
    index = index_of(record())
    assert c.attach(index, "p1", NOW) == "skip" and index.memo is None


def test_the_service_renders_cards_per_call_and_still_applies_snoozes(app, client):
    evaluations = app.extensions[EXTENSION].pipeline.evaluations
    body = record("chart-1")
    first = client.post(SERVICE_URL, json=body).get_json()
    second = client.post(SERVICE_URL, json=copy.deepcopy(body)).get_json()
    assert evaluations.stats.hits == 1 and evaluations.stats.misses == 1
    assert topics(second) == topics(first) and SWITCH in topics(second)
    assert {c["uuid"] for c in first["cards"]}.isdisjoint({c["uuid"] for c in second["cards"]})
    _override(client, _card(second), "snooze")
    third = client.post(SERVICE_URL, json=copy.deepcopy(body)).get_json()
    assert evaluations.stats.hits == 2
    assert SWITCH not in topics(third), "a cached evaluation must not bring back a snoozed card"

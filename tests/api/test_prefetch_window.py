"""Issue 16.1: the lookback window in templates, date bounds and paging (no server needed)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cds_hooks.app import create_app
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.fhir.client import passed_window
from cds_hooks.hooks.prefetch import bounded, fill_template
from cds_hooks.hooks.registry import NOT_OBSERVATION_WINDOWS, lookback_days
from tests.conftest import make_settings

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
SINCE = datetime(2025, 11, 30, tzinfo=UTC)


def test_the_window_is_the_longest_lookback_in_knowledge_plus_a_day():
    knowledge = default_knowledge()
    longest = max(
        [lab.lookback_days for lab in knowledge.labs.values()]
        + [
            t.value
            for t in knowledge.thresholds.values()
            if t.unit == "days" and t.name not in NOT_OBSERVATION_WINDOWS
        ]
    )
    assert longest == 365
    assert lookback_days(knowledge) == 366
    # How long a MedicationRequest stays current (400 days) bounds no Observation search.
    assert knowledge.thresholds["medication_request_current_days"].value > 366


def discovery(tmp_path, **settings):
    app = create_app(make_settings(tmp_path, **settings), knowledge=default_knowledge())
    try:
        return {s["id"]: s["prefetch"] for s in app.test_client().get("/cds-services").get_json()["services"]}
    finally:
        app.extensions["cds_hooks"].store.dispose()


def test_p3_discovery_templates_are_plain_cds_hooks_2_by_default(tmp_path):
    for prefetch in discovery(tmp_path).values():
        assert not any("today()" in t or "date=" in t for t in prefetch.values())


def test_p4_date_bounded_templates_when_configured(tmp_path):
    for prefetch in discovery(tmp_path, prefetch_date_bound=True).values():
        assert "&date=ge{{today() - 366 days}}&" in prefetch["observations"]
        assert "&date=ge{{today() - 366 days}}&" in prefetch["labResults"]
        assert not any("today()" in prefetch[k] for k in ("patient", "conditions", "medicationRequests"))


@pytest.mark.parametrize(
    ("token", "filled"),
    [
        ("{{today()}}", "2026-12-01"),
        ("{{today() - 366 days}}", "2025-11-30"),
        ("{{ today() + 1 day }}", "2026-12-02"),
    ],
)
def test_p4_today_tokens_filled(token, filled):
    assert (
        fill_template(f"Observation?date=ge{token}", {}, date(2026, 12, 1)) == f"Observation?date=ge{filled}"
    )


def test_bounded_adds_the_date_unless_the_search_has_one():
    assert bounded("Observation?patient=p1&_sort=-date", 366, NOW) == (
        "Observation?patient=p1&_sort=-date&date=ge2025-11-30"
    )
    already = "Observation?patient=p1&date=ge2026-01-01"
    assert bounded(already, 366, NOW) == already  # the filled template's own bound is kept


def page(*dates: str | None, sort: str | None = "-date") -> dict:
    self_url = "http://fhir/Observation?patient=p1" + (f"&_sort={sort}" if sort else "")
    return {
        "resourceType": "Bundle",
        "link": [{"relation": "self", "url": self_url}, {"relation": "next", "url": "http://fhir/next"}],
        "entry": [
            {"resource": {"resourceType": "Observation", **({"effectiveDateTime": d} if d else {})}}
            for d in dates
        ],
    }


def test_page_passes_the_window_only_when_sorted_newest_first_and_its_oldest_is_older():
    assert passed_window(page("2026-11-01", "2025-11-29T23:59:59Z"), SINCE)
    assert not passed_window(page("2026-11-01", "2025-11-30T00:00:00Z"), SINCE)  # at the edge: still in
    assert not passed_window(page("2026-11-01", "2020-01-01", sort=None), SINCE)  # no _sort asked for
    assert not passed_window(page("2026-11-01", "2020-01-01", sort="date"), SINCE)  # oldest first
    assert not passed_window(page("2020-01-01", "2026-11-01"), SINCE)  # not in the promised order
    assert not passed_window(page(None, None), SINCE)  # nothing dated: keep paging
    assert passed_window(page("2026-11-01", None, "2019-05-01"), SINCE)  # undated entries are skipped

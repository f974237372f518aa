"""The values a summary quotes agree with the evidence lines under it (issue 14: the decisive value
first; a clinician checks it against the evidence)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from cds_hooks.clinical.evaluation import evaluate_index
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.fhir.resource_index import ResourceIndex
from cds_hooks.hooks.dispatch import evaluate_offline

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _cards(patient_id: str) -> list[dict]:
    manifest = json.loads((EXAMPLES / "manifest.json").read_text())
    (example,) = [e for e in manifest["examples"] if e["patient_id"] == patient_id]
    index = ResourceIndex()
    for entry in json.loads((EXAMPLES / example["file"]).read_text())["entry"]:
        index.add(entry["resource"])
    now = datetime.fromisoformat(f"{manifest['anchor_date']}T12:00:00+00:00")
    return evaluate_index(index, patient_id=patient_id, knowledge=default_knowledge(), now=now)["cards"]


def test_labile_glucose_span_counts_the_calendar_days_the_evidence_shows():
    """ex03: glucose 342 mg/dL at 19:00 and 48 mg/dL at 07:00 two days later (36 hours apart)."""
    (card,) = _cards("ex03")
    assert "glucose 48–342 mg/dL within 2 days" in card["summary"], card["summary"]
    dates = {
        value: datetime.strptime(day, "%d %b %Y").date()
        for value, day in re.findall(
            r"- Glucose (48|342) mg/dL \([\d.]+ mmol/L\), (\d+ \w+ \d{4})", card["detail"]
        )
    }
    assert (dates["48"] - dates["342"]).days == 2


def test_a_card_resting_on_a_diagnosis_names_it_in_the_summary():
    """Ataxia-telangiectasia with an active diabetes condition and a normal glucose: no value to quote,
    so the summary names the diagnosis instead of "the findings below"."""
    path = (
        Path(__file__).resolve().parents[1] / "vignettes/cases/091_r4_at_with_active_diabetes_condition.json"
    )
    case = json.loads(path.read_text())
    now = datetime.fromisoformat(case["now"].replace("Z", "+00:00"))
    (card,) = evaluate_offline(case["request"], now=now, knowledge=default_knowledge())["cards"]
    assert card["summary"] == (
        "Ataxia-telangiectasia with other specified diabetes mellitus: consider immune insulin resistance"
    )


def _vignette_summaries(name: str) -> list[str]:
    case = json.loads((Path(__file__).resolve().parents[1] / "vignettes/cases" / name).read_text())
    now = datetime.fromisoformat(case["now"].replace("Z", "+00:00"))
    return [
        c["summary"]
        for c in evaluate_offline(case["request"], now=now, knowledge=default_knowledge())["cards"]
    ]


def test_an_extreme_dose_the_regimen_already_states_is_not_repeated():
    """All the insulin is the animal insulin: "Bovine insulin 210 U/day, total daily insulin 210 U" said
    one number twice; with other insulins beside it, the total is new information and stays."""
    assert _vignette_summaries("024_r2_extreme_dose_q4h_beef.json") == [
        "Bovine insulin 210 U/day, extreme requirement: test for insulin antibodies"
    ]
    assert _vignette_summaries("026_r2_per_kg_above_weight_179_days.json") == [
        "Porcine insulin 180 U/day, extreme requirement (2.1 U/kg): test for insulin antibodies"
    ]
    assert _vignette_summaries("022_r2_dose_summed_over_current_insulins.json") == [
        "Porcine insulin 120 U/day, total daily insulin 210 U: test for insulin antibodies"
    ]

"""The background: years of unrelated history from carebundle (PyPI; pure Python, seeded), one record per
yearly visit, merged into the chart with ids and references rewritten to the patient's stable ids."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Any

from .chart import Chart
from .patients import Spec

CAREBUNDLE_REQUIREMENT = "carebundle==0.5.0"
CAREBUNDLE_SEED = 4242  # one seed for the whole population; the example number is carebundle's index
MRN_SYSTEM = "http://riverside-hospital.example.org/fhir/mrn"
GLYCAEMIA_LOINC = frozenset({"2345-7", "4548-4"})


def load_carebundle() -> Any:
    try:
        import carebundle
    except ImportError:
        sys.exit(
            f"scripts/examples needs carebundle: pip install '{CAREBUNDLE_REQUIREMENT}' "
            "(or pip install -e '.[test]')"
        )
    return carebundle


def _rewrite_refs(node: Any, mapping: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in mapping:
                out[key] = mapping[value]
            else:
                out[key] = _rewrite_refs(value, mapping)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, mapping) for v in node]
    return node


def _codes(condition: dict[str, Any]) -> set[str]:
    return {c.get("code", "") for c in condition.get("code", {}).get("coding", [])}


def _tidy(resource: dict[str, Any], keep_text: bool) -> dict[str, Any]:
    """Drop carebundle's narrative and meta except on the Patient (its "SYNTHETIC TEST DATA" banner and
    HTEST security label stay); US Core profile claims are dropped everywhere."""
    if not keep_text:
        resource.pop("text", None)
        resource.pop("meta", None)  # the Bundle and the Patient carry the HTEST "test data" label
    elif isinstance(resource.get("meta"), dict):
        resource["meta"].pop("profile", None)
    return resource


def add_background(chart: Chart, spec: Spec, cb: Any) -> None:
    """Merge carebundle records of three yearly visits (the latest 3-6 weeks ago) into the chart."""
    rng = chart.rng
    latest = rng.randint(21, 45)
    visits = [latest, latest + 365 + rng.randint(-20, 20), latest + 730 + rng.randint(-20, 20)]
    background: list[dict[str, Any]] = []
    own_condition_codes = set().union(
        *(_codes(r) for r in chart.resources if r["resourceType"] == "Condition")
    )
    patient: dict[str, Any] | None = None
    practitioner: dict[str, Any] | None = None
    for vi, days_ago in enumerate(visits):
        years_back = round(days_ago / 365)
        panels = spec.recent_panels if spec.recent_panels is not None and days_ago < 400 else None
        bundle = cb.generate_bundle(
            profile=spec.profile,
            seed=CAREBUNDLE_SEED,
            sex=spec.sex,
            age_range=(spec.age - years_back, spec.age - years_back),
            reference_date=chart.today - timedelta(days=days_ago),
            index=chart.number,
            panels=panels,
        )
        data = json.loads(cb.to_json(bundle))
        mapping: dict[str, str] = {}
        kept: list[dict[str, Any]] = []
        for entry in data["entry"]:
            resource = entry["resource"]
            rtype = resource["resourceType"]
            if rtype == "Patient":
                rid = chart.pid
            elif rtype == "Practitioner":
                rid = f"{chart.pid}-practitioner"
            elif rtype == "Encounter":
                rid = f"{chart.pid}-enc-v{vi}"
            else:
                short = {
                    "Observation": "obs",
                    "DiagnosticReport": "dr",
                    "Condition": "bgcond",
                    "MedicationRequest": "bgmed",
                }.get(rtype, rtype.lower())
                n = sum(1 for r in kept if r["resourceType"] == rtype) + 1
                rid = f"{chart.pid}-{short}-v{vi}-{n:03d}"
            mapping[entry["fullUrl"]] = f"{rtype}/{rid}"
            kept.append(
                {"resourceType": rtype, "id": rid, **{k: v for k, v in resource.items() if k != "id"}}
            )
        drop_glycaemia = spec.own_glycaemia and days_ago < 400
        dropped = {
            f"Observation/{r['id']}"
            for r in kept
            if drop_glycaemia
            and r["resourceType"] == "Observation"
            and any(c.get("code") in GLYCAEMIA_LOINC for c in r["code"].get("coding", []))
        }
        for resource in kept:
            resource = _tidy(
                _rewrite_refs(resource, mapping), keep_text=resource["resourceType"] == "Patient"
            )
            rtype = resource["resourceType"]
            ref = f"{rtype}/{resource['id']}"
            if rtype == "Patient":
                if vi == 0:
                    patient = resource
                continue
            if rtype == "Practitioner":
                if vi == 0:
                    practitioner = resource
                continue
            if rtype == "Condition" and (vi > 0 or _codes(resource) & own_condition_codes):
                continue  # the problem list is the latest one; the situation's own entries win
            if rtype == "MedicationRequest" and vi > 0:
                resource["status"] = "completed"  # earlier prescriptions of the same drugs
            if ref in dropped:
                continue  # the situation brings its own glucose and HbA1c
            if rtype == "DiagnosticReport" and dropped:
                resource["result"] = [r for r in resource.get("result", []) if r["reference"] not in dropped]
                if not resource["result"]:
                    continue
            background.append(resource)
    assert patient is not None and practitioner is not None
    patient["identifier"] = [
        {"use": "usual", "system": MRN_SYSTEM, "value": f"EX{chart.number:02d}-{1000 + chart.number * 37}"},
        *patient.get("identifier", []),
    ]
    chart.resources[:0] = [patient, practitioner, *background]

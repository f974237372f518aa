"""The timeline page's content for one patient: chart, text table and "why this card".

The explanation runs the card's own pipeline — facts, findings, rules, with invalid resources set
aside exactly as for the card (``evaluate_until_valid``) — and reads each rule's criteria from
the rule declarations (``clinical.explain``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cds_hooks.clinical.explain import Explanation, ThresholdUse, explain
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.clinical.rules import (
    RULES_BY_ID,
    RuleInput,
    RuleResult,
    evaluate_rules,
    evaluate_until_valid,
    rule_input,
)
from cds_hooks.fhir.json_access import objects, string
from cds_hooks.fhir.resource_index import ResourceIndex
from cds_hooks.web.timeline.chart import Chart, build_chart
from cds_hooks.web.timeline.series import ANTIBODY_KINDS, Timeline, build_timeline

GLUCOSE_UNITS = ("mg/dL", "mmol/L")
GLUCOSE_KINDS_CONVERTED = frozenset({"glucose", "glucose_fasting", "ogtt_2h"})


@dataclass(frozen=True)
class TableRow:
    date: str
    item: str
    value: str
    note: str


@dataclass
class TimelinePage:
    patient_id: str
    patient_name: str
    birth_date: str
    start: datetime
    end: datetime
    glucose_unit: str
    chart: Chart
    table: list[TableRow]
    fired: list[str]
    explanations: list[Explanation]
    rule: str | None
    glucose_factor: float  # mg/dL per mmol/L, from knowledge/labs.toml

    def threshold_text(self, threshold: ThresholdUse) -> str:
        """The threshold as the rules use it, and in mmol/L too when the page shows glucose in mmol/L."""
        if threshold.unit == "mg/dL" and self.glucose_unit == "mmol/L":
            return f"{threshold} (= {_fmt(threshold.value / self.glucose_factor)} mmol/L)"
        return str(threshold)


def _patient_name(index: ResourceIndex, patient_id: str) -> tuple[str, str]:
    patient = index.get(f"Patient/{patient_id}") or {}
    for name in objects(patient.get("name")):
        text = (
            string(name.get("text"))
            or " ".join(
                [
                    *(g for g in name.get("given") or [] if isinstance(g, str)),
                    string(name.get("family")) or "",
                ]
            ).strip()
        )
        if text:
            return text, string(patient.get("birthDate")) or ""
    return patient_id, string(patient.get("birthDate")) or ""


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _table(timeline: Timeline, knowledge: Knowledge, glucose_unit: str, factor: float) -> list[TableRow]:
    rows: list[TableRow] = []
    for kind, results in timeline.labs.items():
        lab = knowledge.labs[kind]
        for r in results:
            if r.value is not None and kind in GLUCOSE_KINDS_CONVERTED and glucose_unit != lab.unit:
                value = f"{_fmt(r.value / factor)} {glucose_unit}"
            elif r.value is not None:
                value = f"{_fmt(r.value)} {r.unit or ''}".strip()
            else:
                value = "positive" if r.positive else "negative"
            note = ""
            if kind in ANTIBODY_KINDS and r.value is not None and r.positive is not None:
                note = "positive" if r.positive else "negative"
            rows.append(TableRow(r.when.date().isoformat(), lab.display, value, note))
    for e in timeline.exposures:
        start = e.start.date().isoformat() if e.start else "unknown start"
        end = e.end.date().isoformat() if e.end else ("ongoing" if e.current else "end unknown")
        detail = [e.group]
        if e.daily_units is not None:
            detail.append(f"{e.daily_units:g} U/day")
        if e.prednisolone_mg is not None:
            detail.append(f"prednisolone-equivalent {e.prednisolone_mg:g} mg/day")
        rows.append(TableRow(start, e.name, f"until {end}", ", ".join(detail)))
    for c in timeline.conditions:
        rows.append(TableRow(c.when.date().isoformat() if c.when else "undated", c.name, "condition", ""))
    rows.sort(key=lambda row: row.date, reverse=True)
    return rows


def build_page(
    index: ResourceIndex,
    knowledge: Knowledge,
    *,
    patient_id: str,
    now: datetime,
    start: datetime,
    end: datetime,
    glucose_unit: str,
    rule: str | None,
) -> TimelinePage:
    def run() -> tuple[RuleInput, list[RuleResult]]:
        x = rule_input(index, knowledge, patient_id, now)
        return x, evaluate_rules(x)

    x, results = evaluate_until_valid(index, run)
    fired = [r.rule_id for r in results]
    shown = [rule] if rule in RULES_BY_ID else fired
    factor = knowledge.labs["glucose"].units["mmol/L"].factor
    timeline = build_timeline(index, knowledge, x.facts, start, end)
    name, birth = _patient_name(index, patient_id)
    return TimelinePage(
        patient_id=patient_id,
        patient_name=name,
        birth_date=birth,
        start=start,
        end=end,
        glucose_unit=glucose_unit,
        chart=build_chart(timeline, glucose_unit, factor),
        table=_table(timeline, knowledge, glucose_unit, factor),
        fired=fired,
        explanations=[explain(r, x) for r in shown],
        rule=rule if rule in RULES_BY_ID else None,
        glucose_factor=factor,
    )

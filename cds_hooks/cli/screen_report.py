"""The results of a population screening: one row per patient, the summary table, and the CSV/JSON file.

A row holds the rule ids (``source.topic.code`` of each card), the card summaries, or the error that kept
that patient from being evaluated, so a clinic can filter the file for a rule and see who could not be
screened. The file is written atomically: a half-written results file is never left behind. The summary
gives cards per 1,000 screened patients per rule: the alert burden a CDS committee asks about first.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

CSV_COLUMNS = ("patient_id", "rule_ids", "summaries", "error")
FORMATS = ("csv", "json")


@dataclass(frozen=True)
class PatientResult:
    patient_id: str
    rule_ids: tuple[str, ...] = ()
    summaries: tuple[str, ...] = ()
    error: str | None = None

    @classmethod
    def from_response(cls, patient_id: str, response: dict[str, Any]) -> PatientResult:
        rule_ids: list[str] = []
        summaries: list[str] = []
        for card in response.get("cards") or []:
            topic = (card.get("source") or {}).get("topic") or {}
            if isinstance(topic.get("code"), str):
                rule_ids.append(topic["code"])
            summaries.append(str(card.get("summary", "")))
        return cls(patient_id, tuple(rule_ids), tuple(summaries))

    def csv_row(self) -> dict[str, str]:
        return {
            "patient_id": self.patient_id,
            "rule_ids": " ".join(self.rule_ids),
            "summaries": " | ".join(self.summaries),
            "error": self.error or "",
        }

    def json_row(self) -> dict[str, Any]:
        return {
            "patient_id": self.patient_id,
            "rule_ids": list(self.rule_ids),
            "summaries": list(self.summaries),
            "error": self.error,
        }


def patients_per_rule(results: Iterable[PatientResult], rule_ids: Sequence[str]) -> dict[str, int]:
    """Patients with at least one card of each rule; every known rule is listed, zeros included, so the
    table also shows which rules were checked and found nobody."""
    counts = dict.fromkeys(rule_ids, 0)
    for result in results:
        for rule_id in dict.fromkeys(result.rule_ids):
            counts[rule_id] = counts.get(rule_id, 0) + 1
    return counts


def cards_per_rule(results: Iterable[PatientResult], rule_ids: Sequence[str]) -> dict[str, int]:
    """Cards of each rule over all patients (a patient may have more than one card of a rule)."""
    counts = dict.fromkeys(rule_ids, 0)
    for result in results:
        for rule_id in result.rule_ids:
            counts[rule_id] = counts.get(rule_id, 0) + 1
    return counts


def per_thousand(count: int, screened: int) -> str:
    return f"{1000 * count / screened:.1f}" if screened else "-"


def rule_table(
    patients: Mapping[str, int], cards: Mapping[str, int], screened: int, errors: int
) -> list[str]:
    """Patients and cards per 1,000 screened per rule id (every rule listed), then the errors: the table
    of ``screen`` and of ``screen --bulk``."""
    width = max([len("rule id"), len("(errors)"), *(len(r) for r in patients)])
    lines = [f"{'rule id':<{width}}  patients  cards per 1,000 screened"]
    lines.extend(
        f"{rule_id:<{width}}  {count:>8}  {per_thousand(cards.get(rule_id, 0), screened):>24}"
        for rule_id, count in patients.items()
    )
    lines.append(f"{'(errors)':<{width}}  {errors:>8}")
    return lines


def summary_text(
    results: Sequence[PatientResult],
    rule_ids: Sequence[str],
    server: str,
    *,
    list_patients: bool,
    skipped_deceased: int = 0,
) -> str:
    """The summary a person reads after a run: totals, patients and cards per 1,000 screened patients
    per rule id (screened: evaluated without error), errors (and, when no file is written, which
    patients have cards)."""
    failed = [r for r in results if r.error]
    with_cards = [r for r in results if r.rule_ids and not r.error]
    without = len(results) - len(failed) - len(with_cards)
    screened = len(results) - len(failed)
    skipped = (
        f" {skipped_deceased} deceased patient{'s' if skipped_deceased != 1 else ''} skipped "
        "(--include-deceased screens them)."
        if skipped_deceased
        else ""
    )
    lines = [
        f"Screened {len(results)} patient{'s' if len(results) != 1 else ''} on {server}: "
        f"{len(with_cards)} with cards, {without} without cards, {len(failed)} "
        f"error{'s' if len(failed) != 1 else ''}.{skipped}",
        "",
    ]
    counts = patients_per_rule(results, rule_ids)
    cards = cards_per_rule([r for r in results if not r.error], rule_ids)
    lines += rule_table(counts, cards, screened, len(failed))
    if list_patients and with_cards:
        lines += ["", "Patients with cards:"]
        lines.extend(f"  {r.patient_id}: {' '.join(r.rule_ids)}" for r in with_cards)
    if failed:
        lines += ["", "Errors:"]
        lines.extend(f"  {r.patient_id}: {r.error}" for r in failed)
    return "\n".join(lines) + "\n"


def render_results(fmt: str, results: Sequence[PatientResult], *, server: str, evaluated_at: datetime) -> str:
    """The results as CSV or JSON text."""
    if fmt == "json":
        document = {
            "fhir_server": server,
            "evaluated_at": evaluated_at.isoformat(),
            "patients": [r.json_row() for r in results],
        }
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(r.csv_row() for r in results)
    return buffer.getvalue()


def write_results(
    path: Path, results: Sequence[PatientResult], *, fmt: str, server: str, evaluated_at: datetime
) -> None:
    """``fmt`` (csv or json) to ``path``, replacing it only once the whole file is written."""
    text = render_results(fmt, results, server=server, evaluated_at=evaluated_at)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)

"""A card's evidence as short lines that read at a glance (issue 14 C16).

Results of one lab kind are listed one per line when there are few; more become one line with the count,
the range in both units, the dates and when the extremes were. Medications and conditions are named as
recorded (escaped: record text is never markup), with the dose and what kind of record it is. Nothing is
said twice: a verdict already in the value ("Positive") is not repeated.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cds_hooks.clinical.cards import record_text
from cds_hooks.clinical.cards.context import CardContext
from cds_hooks.clinical.cards.lab_display import LabDisplay, day, day_range, mg
from cds_hooks.clinical.facts.model import ConditionFact, Evidence, LabResult, MedicationUse, PendingTest
from cds_hooks.fhir.dates import parse_fhir_datetime

MAX_SINGLE_RESULTS = 3  # more results of one kind are summarised in one line
MAX_UNUSABLE = 3  # unusable results listed; the rest are counted

RECORD_KINDS = {
    ("MedicationRequest", "draft"): "draft order",
    ("MedicationRequest", None): "prescription",
    ("MedicationStatement", None): "recorded as taken",
}


def _record_kind(resource_type: str, status: str | None) -> str:
    kind = RECORD_KINDS.get((resource_type, status)) or RECORD_KINDS.get((resource_type, None), resource_type)
    if status and status != "draft":
        return f"{kind}, {status.replace('-', ' ')}"
    return kind


def medication_line(ctx: CardContext, use: MedicationUse) -> str:
    """The medication as recorded, its daily dose, the kind of record and what else the facts know: an
    old active order, when a past use ended, entries recorded more than once."""
    source = use.source or {}
    rtype = use.evidence.reference.split("/", 1)[0] or str(source.get("resourceType", ""))
    status = use.status
    kind = [_record_kind(rtype, None if use.stale_year is not None else status)]
    if use.stale_year is not None:
        kind.append(f"active order from {use.stale_year}: check whether still taken")
    elif use.past and use.ended is not None:
        kind.append(f"until {day(use.ended)}")
    if use.duplicates:
        kind.append(f"recorded {len(use.duplicates) + 1} times")
    dose = dose_phrase(use)
    return f"{record_text.markdown(use.name)}{': ' + dose if dose else ''} ({', '.join(kind)})"


def dose_phrase(use: MedicationUse) -> str | None:
    """Insulin units a day; for a glucocorticoid mg a day and its prednisolone equivalent, when known."""
    if use.insulin and use.daily_units is not None:
        return f"{use.daily_units:g} U/day"
    if use.systemic_glucocorticoid and use.daily_mg is not None:
        text = f"{mg(use.daily_mg)} mg/day"
        if use.prednisolone_mg is not None and abs(use.prednisolone_mg - use.daily_mg) >= 0.05:
            text += f" = prednisolone {mg(use.prednisolone_mg)} mg/day"
        return text
    return None


def condition_line(condition: ConditionFact) -> str:
    line = record_text.markdown(condition.name)
    onset = parse_fhir_datetime(condition.onset)
    if onset is not None:
        line += f", since {day(onset)}"
    if condition.count > 1:
        line += f", recorded {condition.count} times"
    return line


def pending_lines(ctx: CardContext, pending: Iterable[PendingTest]) -> list[str]:
    """Tests not proposed again because they are ordered or in progress, with the order date."""
    template = ctx.knowledge.wording.pending_line
    lines = (
        template.format(test=p.name, date=day(p.ordered) if p.ordered else "date not recorded")
        for p in pending
    )
    return list(dict.fromkeys(lines))


def deferred_lines(ctx: CardContext, deferred: Iterable[tuple[str, str]]) -> list[str]:
    """What this card leaves to an earlier card of the same answer, naming that card (issue 22 B7)."""
    wording, k = ctx.knowledge.wording, ctx.knowledge
    by_card: dict[str, list[str]] = {}
    for kind, rule_id in deferred:
        name = k.workup[kind].text.split(",")[0] if kind in k.workup else ctx.knowledge.referral.text
        by_card.setdefault(rule_id, []).append(name)
    return [
        wording.deferred_line.format(tests=", ".join(names), card=wording.cards[rule_id].name)
        for rule_id, names in by_card.items()
    ]


def lab_lines(ctx: CardContext, kind: str, results: list[LabResult]) -> list[str]:
    display = LabDisplay(ctx.knowledge)
    name = ctx.knowledge.labs[kind].display
    results = sorted(results, key=lambda r: r.when)
    numeric = [r for r in results if r.value is not None and ctx.knowledge.labs[kind].unit]
    if len(results) <= MAX_SINGLE_RESULTS or len(numeric) != len(results):
        shown = results[-5:] if len(results) > 5 else results
        return [f"{name} {display.result(r)}, {day(r.when)}" for r in reversed(shown)]
    low = min(numeric, key=lambda r: r.value or 0.0)
    high = max(numeric, key=lambda r: r.value or 0.0)
    unit = display.reported_unit(results[-1])
    first_unit = display.ordered_units(kind, unit)[0] if display.units(kind) else None

    def short(r: LabResult) -> str:
        if first_unit is None or r.value is None:
            return f"{r.value:g}"
        converted = display.convert(kind, r.value, first_unit[0])
        return f"{converted:.{first_unit[1]}f}" if converted is not None else f"{r.value:g}"

    values = display.value_range(kind, low.value or 0, high.value or 0, unit)
    dates = day_range(results[0].when, results[-1].when)
    # The range covers exactly the results counted (issue 22 D14): when the card cites only some of the
    # kind's results in its window (those at or above a threshold), the line says "11 of 25".
    on_record = len(ctx.facts.lab(kind))
    count = f"{len(results)} of {on_record}" if on_record > len(results) else f"{len(results)}"
    return [
        f"{count} {name.lower()} results {values}, {dates}; lowest {short(low)} on "
        f"{low.when.day} {low.when:%b}, highest {short(high)} on {high.when.day} {high.when:%b}"
    ]


def evidence_lines(
    ctx: CardContext, evidence: Iterable[Evidence], to_stop: Iterable[MedicationUse] = ()
) -> list[str]:
    """The lines of the Evidence list: in the order cited, results of one kind kept together. A current
    animal insulin in ``to_stop`` recorded only as taken (no prescription to update) says to stop it."""
    stop = {m.evidence.reference for m in to_stop if m.evidence.reference.startswith("MedicationStatement/")}
    lines: list[str] = []
    by_kind: dict[str, list[LabResult]] = {}
    order: list[tuple[str, Any]] = []
    for e in dict.fromkeys(evidence):
        fact = e.fact
        if isinstance(fact, LabResult):
            if fact.kind not in by_kind:
                order.append(("lab", fact.kind))
                by_kind[fact.kind] = []
            by_kind[fact.kind].append(fact)
        elif isinstance(fact, MedicationUse):
            line = medication_line(ctx, fact)
            if e.reference in stop:
                line += f": {ctx.knowledge.wording.switch.statement_stop}"
            order.append(("line", line))
        elif isinstance(fact, ConditionFact):
            order.append(("line", condition_line(fact)))
        else:
            order.append(("line", record_text.markdown(e.text)))
    for what, value in order:
        lines.extend(lab_lines(ctx, value, by_kind[value]) if what == "lab" else [value])
    return list(dict.fromkeys(lines))


def unusable_lines(ctx: CardContext) -> list[str]:
    items = ctx.facts.unusable
    lines = [
        f"{record_text.markdown(u.evidence.text)}: {record_text.markdown(u.reason)}"
        for u in items[:MAX_UNUSABLE]
    ]
    if len(items) > MAX_UNUSABLE:
        lines.append(f"and {len(items) - MAX_UNUSABLE} more")
    return lines

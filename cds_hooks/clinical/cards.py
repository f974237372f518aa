"""Rule results → CDS Hooks 2.0 cards (O1–O6) that read like a consultant's note (issue 14 C14–C17).

- **summary**: a template from ``knowledge/cards/<rule-id>.toml`` filled with the patient's decisive
  values ("Bovine insulin 42 U/day, insulin antibodies 46 U/mL: …"), under 140 characters;
- **detail**: at most 60 words of prose (why, what to do, the hypoglycaemia warning on every switch),
  then short lists — evidence, other causes, pending tests, results that could not be used;
- **suggestions**: draft FHIR resources (the switch with its stop action, tests, timed monitoring,
  referral);
- **links**: exactly one, to the rule's page (``/sources/<rule-id>``); never a link in the markdown.

Every piece of record text is escaped before it enters a card (``record_text``). No member is ever null
or empty (J2): optional members are left out when there is nothing to say.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from cds_hooks.clinical import record_text
from cds_hooks.clinical.card_context import CardContext
from cds_hooks.clinical.evidence_lines import (
    EvidenceIndex,
    evidence_lines,
    pending_lines,
    resource,
    unusable_lines,
)
from cds_hooks.clinical.facts.model import Evidence, LabResult, MedicationUse
from cds_hooks.clinical.findings import Finding
from cds_hooks.clinical.insulin_switch import reduction, replace_draft_suggestion, species, switch_suggestion
from cds_hooks.clinical.knowledge import Coding, WorkupTest
from cds_hooks.clinical.lab_display import LabDisplay, mg
from cds_hooks.clinical.rules import RuleResult
from cds_hooks.clinical.wording import SUMMARY_LIMIT, TimedTest, Variant

RULE_SYSTEM = "https://immune-ir-cds.example.org/fhir/CodeSystem/rules"
OVERRIDE_SYSTEM = "https://immune-ir-cds.example.org/fhir/CodeSystem/override-reason"
SOURCES_PATH = "/sources"
SEED_SOURCE = "immune-insulin-resistance"  # the seed text's page
APP_LAUNCH_PATH = "/app/launch"  # the SMART app: timeline and "why this card" (docs/timeline.md)
SIGNS_FALLBACK = "the findings below"  # {signs} when no finding gives a value to quote


def rule_page_url(ctx: CardContext, rule_id: str) -> str:
    return f"{ctx.base_url}{SOURCES_PATH}/{rule_id}"


def _uuid() -> str:
    return str(uuid.uuid4())


def _concept(coding: Coding, text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [coding.as_fhir()]}
    if text:
        concept["text"] = text
    return concept


def _service_request(
    ctx: CardContext, concept: dict[str, Any], category: dict[str, Any], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "category": [category],
        "code": concept,
        "subject": {"reference": f"Patient/{ctx.facts.patient_id}"},
    }
    resource.update(extra or {})
    return resource


def _lab_order_actions(ctx: CardContext, tests: list[WorkupTest], description: str) -> list[dict[str, Any]]:
    """One create action per test: a draft laboratory ServiceRequest."""
    category = _concept(ctx.knowledge.lab_category)
    return [
        {
            "type": "create",
            "description": description.format(t.text),
            "resource": _service_request(ctx, _concept(t.code, t.text), category),
        }
        for t in tests
    ]


def workup_suggestion(ctx: CardContext, kinds: tuple[str, ...]) -> dict[str, Any] | None:
    """One suggestion ordering the listed tests (``RuleResult.workup`` holds only those with no valid
    result in their window and not pending: ``rules.tests_to_propose``)."""
    k = ctx.knowledge
    tests = [k.workup[kind] for kind in kinds if kind in k.workup]
    if not tests:
        return None
    actions = _lab_order_actions(ctx, tests, "Order {}")
    names = ", ".join(t.text for t in tests)
    label = f"Order {names}"
    if len(label) > 120:
        label = f"Order the suggested tests ({len(tests)})"
    return {"label": label, "uuid": _uuid(), "actions": actions}


def referral_suggestion(ctx: CardContext) -> dict[str, Any]:
    ref = ctx.knowledge.referral
    resource = _service_request(
        ctx, {"text": ref.text}, _concept(ref.category), {"performerType": _concept(ref.performer_type)}
    )
    return {
        "label": "Refer to endocrinology",
        "uuid": _uuid(),
        "actions": [
            {"type": "create", "description": "Create a referral to endocrinology", "resource": resource}
        ],
    }


def timed_monitoring_suggestion(ctx: CardContext, test: TimedTest) -> dict[str, Any]:
    """A test repeated at set times of day (capillary glucose before lunch and the evening meal)."""
    concept = {
        "coding": [{"system": test.system, "code": test.code, "display": test.display}],
        "text": test.text,
    }
    resource = _service_request(
        ctx,
        concept,
        _concept(ctx.knowledge.lab_category),
        {"occurrenceTiming": {"repeat": {"when": list(test.when)}}},
    )
    return {
        "label": test.label,
        "uuid": _uuid(),
        "actions": [{"type": "create", "description": f"Order {test.text.lower()}", "resource": resource}],
    }


def monitoring_suggestion(ctx: CardContext, kinds: tuple[str, ...]) -> dict[str, Any] | None:
    """Tests to monitor with, proposed even after a recent result."""
    k = ctx.knowledge
    tests = [k.workup[kind] for kind in kinds if kind in k.workup]
    if not tests:
        return None
    actions = _lab_order_actions(ctx, tests, "Order {} monitoring")
    return {
        "label": f"Order monitoring: {', '.join(t.text for t in tests)}",
        "uuid": _uuid(),
        "actions": actions,
    }


# ----------------------------------------------------------------------------------------------------
# Summary values: the patient's decisive findings, as short phrases


def _cited(finding: Finding, cited: set[Evidence]) -> bool:
    return bool(finding) and any(e in cited for e in finding.evidence)


class Values:
    """The placeholders of a card's templates for one rule result, escaped with ``escape`` (plain text
    for the summary, markdown for the detail)."""

    def __init__(self, ctx: CardContext, result: RuleResult, escape: Any, max_signs: int = 2) -> None:
        self.ctx, self.result, self.escape, self.max_signs = ctx, result, escape, max_signs
        self.cited = set(result.evidence)
        self.facts = EvidenceIndex.of(ctx)
        self.display = LabDisplay(ctx.knowledge)
        self.placeholders: set[str] = set()  # of the template being filled

    def _lab(self, r: LabResult, *, name: bool = True, both: bool = False) -> str:
        value = self.display.result(
            r, resource(self.ctx, r.evidence.reference), both=both, escape=self.escape
        )
        label = self.ctx.knowledge.labs[r.kind].display
        return f"{_lower_first(label)} {value}" if name else value

    def _results(self, finding: Finding) -> list[LabResult]:
        return [self.facts.labs[e.reference] for e in finding.evidence if e.reference in self.facts.labs]

    def _animal_uses(self) -> list[MedicationUse]:
        if self.result.switch_from:
            return list(self.result.switch_from)
        if self.result.replace_drafts:
            return [use for use, _ in self.result.replace_drafts]
        return [
            m
            for e in self.result.evidence
            if (m := self.facts.medications.get(e.reference)) and m.animal_insulin
        ]

    def _species(self) -> list[str | None]:
        return [species(self.ctx, resource(self.ctx, m.evidence.reference)) for m in self._animal_uses()]

    def animal(self) -> str:
        kinds = set(self._species())
        if kinds == {"porcine"}:
            return "porcine insulin"
        if kinds == {"bovine"}:
            return "bovine insulin"
        if kinds == {"porcine", "bovine"}:
            return "porcine and bovine insulin"
        return "animal insulin"

    def _animal_units(self) -> float | None:
        """The daily units of the animal insulins the card is about, when every one is known."""
        units = [m.daily_units for m in self._animal_uses()]
        return sum(u or 0 for u in units) if units and all(u is not None for u in units) else None

    def regimen(self) -> str:
        units = self._animal_units()
        return f"{self.animal()} {units:g} U/day" if units is not None else self.animal()

    def reduction(self) -> str:
        percents = sorted(
            {reduction(self.ctx, s).percent for s in self._species()} or {reduction(self.ctx, None).percent}
        )
        return f"{percents[0]:g} %" if len(percents) == 1 else f"{percents[0]:g}–{percents[-1]:g} %"

    def antibody(self) -> str:
        results = self._results(self.ctx.findings.insulin_antibody_positive)
        return self._lab(results[0]) if results else "insulin antibodies positive"

    def receptor(self) -> str:
        results = self._results(self.ctx.findings.receptor_antibody_positive)
        value = self._lab(results[0], name=False) if results else "positive"
        return f"insulin-receptor antibody {value}"

    def _cited_condition(self, finding: Finding) -> str | None:
        """The recorded name of the first condition ``finding`` rests on that this card cites."""
        for e in finding.evidence:
            condition = self.facts.conditions.get(e.reference)
            if condition is not None and e in self.cited:
                return _condition_name(self.escape(condition.name))
        return None

    def autoimmunity(self) -> str:
        f = self.ctx.findings
        condition = self._cited_condition(f.autoimmune_disease)
        if condition is not None:
            return condition
        ana = self._results(f.ana_positive)
        if ana and any(r.evidence in self.cited for r in ana):
            observation = resource(self.ctx, ana[0].evidence.reference)
            return f"ANA {self.display.result(ana[0], observation, escape=self.escape)}"
        return "autoimmunity"

    def insulin_level(self) -> str:
        results = self._results(self.ctx.findings.insulin_elevated)
        return f"serum {self._lab(results[0])}" if results else "serum insulin raised"

    def hypoglycaemia(self) -> str:
        results = [r for r in self._results(self.ctx.findings.fasting_hypoglycaemia) if r.value is not None]
        lowest = min(results, key=lambda r: r.value or 0.0) if results else None
        return self._lab(lowest) if lowest else "fasting hypoglycaemia"

    def glycaemia(self) -> str:
        f = self.ctx.findings.hyperglycaemia
        results = self._results(f)
        for kind in ("glucose", "glucose_fasting", "ogtt_2h", "hba1c"):
            of_kind = [
                r for r in results if r.kind == kind and r.value is not None and r.evidence in self.cited
            ]
            if of_kind:
                top = max(of_kind, key=lambda r: r.value or 0.0)
                prefix = "up to " if len(of_kind) > 1 else ""
                label = self.ctx.knowledge.labs[kind].display
                return f"{_lower_first(label)} {prefix}{self._lab(top, name=False)}"
        condition = self._cited_condition(f)
        return condition if condition is not None else "raised glucose"

    def labile(self) -> str:
        evidence = self.ctx.findings.labile_glucose.evidence
        note = next((e.text for e in evidence if not e.reference), None)
        cv = re.search(r"(\d+(?:\.\d+)?)\s*%", note or "")
        if cv:
            return f"glucose CV {float(cv.group(1)):.0f} %"
        results = sorted(self._results(self.ctx.findings.labile_glucose), key=lambda r: r.when)
        if len(results) >= 2:
            low, high = min(results, key=lambda r: r.value or 0), max(results, key=lambda r: r.value or 0)
            unit = self.display.reported_unit(high.kind, resource(self.ctx, high.evidence.reference))
            values = self.display.value_range(high.kind, low.value or 0, high.value or 0, unit).split(" (")[0]
            # Calendar days, as the evidence lines date the two results: 19:00 to 07:00 two days later
            # reads "within 2 days", not the 1 whole day in between.
            days = abs((results[-1].when.date() - results[0].when.date()).days)
            within = f"within {days} day{'s' if days != 1 else ''}" if days else "on one day"
            return f"glucose {values} {within}"
        return "labile glucose"

    def extreme(self) -> str:
        tdd = self.ctx.findings.total_daily_dose
        weight = self.ctx.facts.latest_weight_kg
        per_kg = None
        if tdd is not None and weight is not None and weight.value and weight.evidence in self.cited:
            per_kg = f"{tdd / weight.value:.1f} U/kg"
        animal = self._animal_units()
        if (
            tdd is not None
            and "regimen" in self.placeholders
            and animal is not None
            and abs(animal - tdd) < 0.01
        ):
            # "Bovine insulin 210 U/day" already says the total: not "…, total daily insulin 210 U".
            return f"extreme requirement ({per_kg})" if per_kg else "extreme requirement"
        if tdd is None:
            return "extreme insulin requirement"
        return f"total daily insulin {tdd:g} U ({per_kg})" if per_kg else f"total daily insulin {tdd:g} U"

    def signs(self) -> str:
        f = self.ctx.findings
        phrases = []
        if _cited(f.receptor_antibody_positive, self.cited):
            phrases.append(self.receptor())
        if _cited(f.labile_glucose, self.cited):
            phrases.append(self.labile())
        if _cited(f.extreme_requirement, self.cited):
            phrases.append(self.extreme())
        if _cited(f.insulin_elevated, self.cited):
            phrases.append(self.insulin_level())
        if _cited(f.fasting_hypoglycaemia, self.cited) and not _cited(f.labile_glucose, self.cited):
            phrases.append(self.hypoglycaemia())
        if _cited(f.hyperglycaemia, self.cited) and not _cited(f.labile_glucose, self.cited):
            phrases.append(self.glycaemia())
        return ", ".join(list(dict.fromkeys(phrases))[: self.max_signs]) or SIGNS_FALLBACK

    def signs_or_diabetes(self) -> str:
        """The signs, else the cited diabetes diagnosis (a steroid order is judged on a diagnosis alone)."""
        signs = self.signs()
        if signs != SIGNS_FALLBACK:
            return signs
        diagnosis = self._cited_condition(self.ctx.findings.diabetes)
        return _lower_first(diagnosis) if diagnosis is not None else signs

    def resistance(self) -> str:
        """Rule 1: no sign of antibody-mediated resistance, saying so even with antibodies."""
        if _cited(self.ctx.findings.insulin_antibody_positive, self.cited):
            return f"{self.antibody()}, but no sign of resistance"
        return "no sign of antibody resistance"

    def steroid(self) -> str:
        uses = [
            m
            for e in self.result.evidence
            if (m := self.facts.medications.get(e.reference)) and m.systemic_glucocorticoid
        ]
        if not uses:
            return "Glucocorticoid"
        use = uses[0]
        if use.glucocorticoid and use.daily_mg is not None:
            text = f"{use.glucocorticoid} {mg(use.daily_mg)} mg/day"
            equivalent = use.prednisolone_mg
            if equivalent is not None and abs(equivalent - use.daily_mg) >= 0.05:
                text += f" (prednisolone {mg(equivalent)})"
            return _upper_first(text)
        name = use.glucocorticoid or _short(self.escape(use.name), 40)
        return _upper_first(f"{name}, dose unknown" if self.result.dose_unknown else name)

    def dose(self) -> str:
        units = [u.daily_units for u, _ in self.ctx.drafts if u.insulin and u.daily_units is not None]
        units += [
            m.daily_units
            for e in self.result.evidence
            if (m := self.facts.medications.get(e.reference)) and m.insulin and m.daily_units
        ]
        return f"{max(units):g} U/day" if units else "an extreme dose"

    def medications(self) -> str:
        return ", ".join(self.escape(m) for m in self.result.medications) or "see evidence"

    def lookback(self) -> str:
        return f"{self.ctx.knowledge.threshold('glycaemia_screen_lookback'):g}"

    def fill(self, template: str) -> str:
        self.placeholders = set(re.findall(r"\{(\w+)\}", template))
        return template.format(**{name: getattr(self, name)() for name in self.placeholders})


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _condition_name(name: str, limit: int = 45) -> str:
    """A condition's name as recorded, without its qualifiers ("SLE with organ involvement" → "SLE")."""
    head = re.split(r",\s| with | without |\s\(", name, maxsplit=1)[0]
    return _short(head, limit)


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lower_first(text: str) -> str:
    """ "Glucose" → "glucose" inside a sentence; acronyms ("HbA1c", "ANA") stay."""
    return text if any(c.isupper() for c in text[1:]) else text[:1].lower() + text[1:]


def summary(ctx: CardContext, result: RuleResult, variant: Variant, switching: bool) -> str:
    """The template filled with the decisive values; with fewer of them when the text would reach the
    limit, and cut only as a last resort."""
    template = variant.summary if switching or not variant.summary_no_switch else variant.summary_no_switch
    text = ""
    for max_signs in (2, 1):
        text = _upper_first(Values(ctx, result, record_text.plain, max_signs).fill(template))
        if len(text) < SUMMARY_LIMIT:
            return text
    return text[: SUMMARY_LIMIT - 2].rstrip() + "…"


# ----------------------------------------------------------------------------------------------------
# Detail


def _section(heading: str, lines: list[str]) -> str | None:
    return f"**{heading}**\n\n" + "\n".join(f"- {line}" for line in lines) if lines else None


def detail(ctx: CardContext, result: RuleResult, variant: Variant, switching: bool) -> str:
    wording = ctx.knowledge.wording
    template = variant.detail if switching or not variant.detail_no_switch else variant.detail_no_switch
    prose = [Values(ctx, result, record_text.markdown).fill(template)]
    if switching:
        prose.append(wording.switch.hypoglycaemia)
    shown = set(result.evidence)
    sections = [
        " ".join(prose),
        _section(wording.evidence_heading, evidence_lines(ctx, result.evidence, to_stop=result.switch_from)),
        _section(
            wording.other_causes_heading,
            evidence_lines(ctx, [e for e in ctx.findings.other_causes if e not in shown]),
        ),
        _section(wording.pending_heading, pending_lines(ctx, result.pending)),
        _section(wording.unusable_heading, unusable_lines(ctx)),
    ]
    return "\n\n".join(s for s in sections if s)


# ----------------------------------------------------------------------------------------------------
# The card


def _switch_suggestions(ctx: CardContext, result: RuleResult) -> list[dict[str, Any]]:
    suggestions = [replace_draft_suggestion(ctx, use, draft) for use, draft in result.replace_drafts] + [
        switch_suggestion(ctx, med, resource(ctx, med.evidence.reference)) for med in result.switch_from
    ]
    return [{**s, "uuid": _uuid()} for s in suggestions]


def render_card(ctx: CardContext, result: RuleResult) -> dict[str, Any]:
    """One card for one rule result."""
    wording = ctx.knowledge.wording
    card_wording = wording.cards[result.rule_id]
    variant = card_wording.variants[result.variant]
    switching = bool(result.switch_from or result.replace_drafts)
    text = summary(ctx, result, variant, switching)
    url = rule_page_url(ctx, result.rule_id)
    card: dict[str, Any] = {
        "uuid": _uuid(),
        "summary": text,
        "indicator": result.indicator or card_wording.indicator,
        "detail": detail(ctx, result, variant, switching),
        "source": {
            "label": wording.source_label,
            "url": url,
            "topic": {"system": RULE_SYSTEM, "code": result.rule_id, "display": card_wording.page.title},
        },
    }
    if card_wording.monitoring is not None:
        monitoring = timed_monitoring_suggestion(ctx, card_wording.monitoring)
    else:
        monitoring = monitoring_suggestion(ctx, result.monitoring)
    suggestions = [
        *_switch_suggestions(ctx, result),
        *(
            s
            for s in (
                monitoring,
                workup_suggestion(ctx, result.workup),
                referral_suggestion(ctx) if result.referral else None,
            )
            if s is not None
        ),
    ]
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "at-most-one" if len(suggestions) == 1 else "any"
    snooze_days = str(wording.snooze_days(result.rule_id))
    card["overrideReasons"] = [
        {"system": OVERRIDE_SYSTEM, "code": code, "display": display.replace("{snooze_days}", snooze_days)}
        for code, display in wording.override_reasons
    ]
    card["links"] = [
        {"label": wording.rule_link_label, "url": url, "type": "absolute"},
        smart_link(ctx, result.rule_id, card["uuid"]),
    ]
    return card


def smart_link(ctx: CardContext, rule_id: str, card_uuid: str) -> dict[str, Any]:
    """The card's link to the SMART app: the EHR launches it with this rule and card as ``appContext``."""
    return {
        "label": ctx.knowledge.wording.timeline_link_label,
        "url": f"{ctx.base_url}{APP_LAUNCH_PATH}",
        "type": "smart",
        "appContext": json.dumps({"rule": rule_id, "card": card_uuid}, separators=(",", ":")),
    }

"""The proposed switch from animal to human insulin as a card suggestion, following the request's one
``SwitchPlan`` (``clinical/switch_dose.py``):

- **reduce** (or **keep**): a draft MedicationRequest for human insulin of the same action profile, each
  dose per administration cut and rounded as the plan says (the percentage printed is the one applied),
  with a note giving the original dose, the cut and why, the hypoglycaemia warning and the supervision;
  then the action that stops the animal insulin;
- **covered**: a current human insulin already gives what the animal insulin gives: only the stop;
- **held**: the animal order is on hold, so it is not the current dose: human insulin with the dose left
  to set, and the stop;
- **specialist**: a child, pregnancy, dialysis or a pump: no dose at all, a referral to the team instead.

A dose that is not in insulin units is never copied.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Any

from cds_hooks.clinical.cards import record_text
from cds_hooks.clinical.cards.context import CardContext
from cds_hooks.clinical.cards.lab_display import LabDisplay, day
from cds_hooks.clinical.facts.dosage import is_insulin_unit
from cds_hooks.clinical.facts.model import ConditionFact, LabResult, MedicationUse, PatientFact
from cds_hooks.clinical.switch_dose import (
    SwitchPlan,
    applied_percent,
    covering_insulin,
    new_dose,
    plan_switch,
    reduction,
)


@dataclass(frozen=True)
class Dose:
    """What happened to the dose of one order: reduced (original → new units), or not copied."""

    original: float | None  # units per administration (None: no dose in units)
    new: float | None
    unit_text: str | None = None  # the dose as written when it is not in insulin units

    @property
    def applied(self) -> float | None:
        """The cut made, in %, when the dose was copied."""
        if self.original is None or self.new is None:
            return None
        return applied_percent(self.original, self.new)


def plan_of(ctx: CardContext, plan: SwitchPlan | None) -> SwitchPlan:
    """The result's plan (every switching rule sets one; a rule result made elsewhere gets the patient's)."""
    return plan if plan is not None else plan_switch(ctx.knowledge, ctx.facts, ctx.findings)


def mode(ctx: CardContext, plan: SwitchPlan, med: MedicationUse) -> str:
    """How ``med`` is switched: specialist, covered, held, keep or reduce."""
    if plan.specialist:
        return "specialist"
    if covering_insulin(ctx.facts, med) is not None:
        return "covered"
    if med.held:
        return "held"
    return "keep" if plan.keep_dose else "reduce"


def _dose_text(quantity: dict[str, Any]) -> str:
    value = quantity.get("value")
    unit = quantity.get("unit") or quantity.get("code") or ""
    return f"{value} {unit}".strip()


def _unit_doses(entries: list[dict[str, Any]]) -> bool:
    quantities = [e.get("doseQuantity") for e in entries]
    return (
        bool(entries)
        and all(
            isinstance(q, dict)
            and isinstance(q.get("value"), int | float)
            and not isinstance(q.get("value"), bool)
            and q["value"] >= 0
            and is_insulin_unit(q)
            for q in quantities
        )
        and not any("doseRange" in e or "rateQuantity" in e or "rateRange" in e for e in entries)
    )


def reduced_dosage(
    ctx: CardContext, dosages: list[Any], percent: float
) -> tuple[list[dict[str, Any]], list[Dose]]:
    """A copy of ``dosages`` with every dose in insulin units cut by ``percent`` and rounded
    (``switch_dose.new_dose``); doses in any other unit (a ``{pill}``, mL, a range or a rate) are
    removed, never copied. Returns the dosages and what was done."""
    text = ctx.knowledge.wording.switch.dosage_text
    kept = ctx.knowledge.wording.switch.kept_dosage_text
    out: list[dict[str, Any]] = []
    doses: list[Dose] = []
    for dosage in dosages:
        if not isinstance(dosage, dict):
            continue
        new_dosage = copy.deepcopy(dosage)
        given = new_dosage.get("doseAndRate")  # a damaged record may hold anything: no list, no entries
        entries = [e for e in given if isinstance(e, dict)] if isinstance(given, list) else []
        if _unit_doses(entries):
            for entry in entries:
                quantity = entry["doseQuantity"]
                original = float(quantity["value"])
                dose = Dose(original=original, new=new_dose(ctx.knowledge, original, percent))
                quantity["value"] = dose.new
                doses.append(dose)
                applied = percent_text([dose.applied or 0.0])
                new_dosage["text"] = (kept if dose.new == original else text).format(
                    dose=f"{dose.new:g}", original=f"{original:g}", percent=applied
                )
        else:
            quantities = [e.get("doseQuantity") for e in entries]
            shown = ", ".join(_dose_text(q) for q in quantities if isinstance(q, dict)) or None
            new_dosage.pop("doseAndRate", None)
            new_dosage.pop("text", None)  # it states the dose that was not copied
            doses.append(Dose(original=None, new=None, unit_text=shown))
        out.append(new_dosage)
    return out, doses


def _source_dosages(med: MedicationUse) -> list[Any]:
    source = med.source
    if source is None:
        return []
    found = source.get("dosageInstruction") or source.get("dosage")
    return found if isinstance(found, list) else []


def planned_doses(ctx: CardContext, plan: SwitchPlan, med: MedicationUse) -> list[Dose]:
    """The doses the proposed order gives ``med``'s administrations (for the {reduction} phrase)."""
    if mode(ctx, plan, med) not in ("reduce", "keep"):
        return []
    cut = reduction(ctx.knowledge, plan, med.species)
    return reduced_dosage(ctx, _source_dosages(med), cut.percent)[1]


def percent_text(percents: list[float]) -> str:
    """ "10 %", or "13–14 %" when the doses were cut by different amounts after rounding (whole
    percent, halves up)."""
    values = sorted({math.floor(p + 0.5) for p in percents})
    if not values:
        return "0 %"
    return f"{values[0]:g} %" if len(values) == 1 else f"{values[0]:g}–{values[-1]:g} %"


def _supervision(ctx: CardContext, plan: SwitchPlan) -> str:
    texts = ctx.knowledge.wording.switch.plan
    days = f"{ctx.knowledge.threshold('switch_supervision_days'):g}"
    return texts["supervision_cgm" if plan.cgm else "supervision"].format(days=days)


def replacement_request(ctx: CardContext, plan: SwitchPlan, med: MedicationUse) -> tuple[dict[str, Any], str]:
    """A draft MedicationRequest for recombinant human insulin of the same action profile at the dose the
    plan gives, with a note stating the original dose, the cut and why, the hypoglycaemia warning and the
    supervision. Also returns a short phrase for the dose (for the suggestion's label)."""
    wording = ctx.knowledge.wording
    switch = wording.switch
    replacement = wording.replacements.get(med.insulin_profile or "unknown", wording.replacements["unknown"])
    name = record_text.plain(med.name)
    cut = reduction(ctx.knowledge, plan, med.species)
    if med.held:
        dosages: list[dict[str, Any]] = []
        doses: list[Dose] = []
    else:
        dosages, doses = reduced_dosage(ctx, _source_dosages(med), cut.percent)
    reduced = [d for d in doses if d.new is not None]
    not_copied = [d for d in doses if d.new is None]
    if med.held:
        note = switch.held_dose_note.format(medication=name)
        phrase = switch.no_dose_phrase
    elif reduced and not not_copied:
        first = reduced[0]
        template = switch.kept_dose_note if cut.percent <= 0 else switch.dose_note
        note = template.format(
            medication=name,
            original=f"{first.original:g}",
            percent=percent_text([d.applied or 0.0 for d in reduced]),
            dose=f"{first.new:g}",
            reasons="; ".join(cut.reasons),
        )
        phrase = switch.dose_phrase.format(dose=f"{first.new:g}", original=f"{first.original:g}")
    elif any(d.unit_text for d in not_copied):
        shown = next(d.unit_text for d in not_copied if d.unit_text)
        note = switch.non_unit_dose_note.format(medication=name, original=record_text.plain(shown))
        phrase = switch.no_dose_phrase
    else:
        note = switch.no_dose_note.format(medication=name)
        phrase = switch.no_dose_phrase
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "proposal",
        "medicationCodeableConcept": replacement.concept(),
        "subject": {"reference": f"Patient/{ctx.facts.patient_id}"},
        "note": [{"text": f"{note} {switch.hypoglycaemia} {_supervision(ctx, plan)}"}],
    }
    if dosages:
        resource["dosageInstruction"] = dosages
    return resource, phrase


def _short(name: str, limit: int = 60) -> str:
    """The name as recorded, cut at a word (never mid-word) when longer than ``limit``."""
    text = record_text.plain(name)
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    return (head.rsplit(" ", 1)[0] if " " in head else head).rstrip(" ,;:-") + "…"


def _drug_name(name: str, limit: int = 40) -> str:
    """The drug without its strength and form, for a sentence ("insulin glargine 100 UNT/ML Injectable
    Solution [Lantus]" → "insulin glargine"); the name as recorded when it does not start with words."""
    text = record_text.plain(name)
    head = re.split(r"\s(?=\d)", text, maxsplit=1)[0]
    return _short(head if len(head) >= 3 else text, limit)


def _stop_action(ctx: CardContext, med: MedicationUse) -> dict[str, Any] | None:
    """The update that stops a prescription; none for a MedicationStatement (not an order)."""
    source = med.source
    if source is None or source.get("resourceType") != "MedicationRequest" or not source.get("id"):
        return None
    switch = ctx.knowledge.wording.switch
    stopped = copy.deepcopy(dict(source))
    stopped["status"] = "stopped"
    stopped["statusReason"] = {"text": switch.status_reason}
    return {
        "type": "update",
        "description": switch.update_description.format(medication=_short(med.name)),
        "resource": stopped,
    }


def _create(ctx: CardContext, plan: SwitchPlan, med: MedicationUse) -> tuple[dict[str, Any], str]:
    switch = ctx.knowledge.wording.switch
    resource, phrase = replacement_request(ctx, plan, med)
    replacement = record_text.plain(resource["medicationCodeableConcept"]["text"])
    action = {
        "type": "create",
        "description": switch.create_description.format(replacement=replacement, dose=phrase),
        "resource": resource,
    }
    label = switch.label.format(replacement=replacement, dose=phrase, medication=_short(med.name))
    return action, label


def referral_to_team(ctx: CardContext, plan: SwitchPlan, meds: list[MedicationUse]) -> dict[str, Any]:
    """Issue 22 A3: instead of a dosed order, one referral to the team that makes the switch, naming
    every animal insulin it switches."""
    switch = ctx.knowledge.wording.switch
    group = switch.specialists[plan.specialist or "child"]
    medication = " and ".join(dict.fromkeys(_drug_name(m.name) for m in meds))
    ref = ctx.knowledge.referral
    text = switch.referral["text"].format(medication=medication, reason=group["reason"], team=group["team"])
    resource = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        # As the endocrinology referral: SNOMED CT 3457005 "Patient referral" as the category, the team
        # in text (no verified code for each team).
        "category": [{"coding": [ref.category.as_fhir()]}],
        "code": {"text": text},
        "performerType": {"text": group["team"]},
        "subject": {"reference": f"Patient/{ctx.facts.patient_id}"},
        "note": [{"text": f"{switch.hypoglycaemia} {_supervision(ctx, plan)}"}],
    }
    return {
        "label": _short(switch.referral["label"].format(team=group["team"], medication=medication), 120),
        "actions": [
            {
                "type": "create",
                "description": switch.referral["description"].format(team=group["team"]),
                "resource": resource,
            }
        ],
        "isRecommended": True,
    }


def switch_suggestions(ctx: CardContext, plan: SwitchPlan, meds: list[MedicationUse]) -> list[dict[str, Any]]:
    """Patient-view: one suggestion per animal insulin, or one referral for all of them when a specialist
    team doses the switch (nothing is stopped then: the team stops it when human insulin starts)."""
    specialist = [m for m in meds if mode(ctx, plan, m) == "specialist"]
    suggestions = [s for m in meds if m not in specialist and (s := switch_suggestion(ctx, plan, m))]
    return [referral_to_team(ctx, plan, specialist), *suggestions] if specialist else suggestions


def switch_suggestion(ctx: CardContext, plan: SwitchPlan, med: MedicationUse) -> dict[str, Any] | None:
    """Patient-view: create the human insulin FIRST (the Sandbox applies only the first action), then
    stop the animal-insulin prescription; only the stop when a current human insulin already covers it
    (nothing to suggest for a statement, which is not an order: its evidence line says to stop it)."""
    how = mode(ctx, plan, med)
    stop = _stop_action(ctx, med)
    if how == "covered":
        if stop is None:
            return None
        covering = covering_insulin(ctx.facts, med)
        already = _drug_name(covering.name) if covering else "human insulin"
        label = f"Stop {_short(med.name)}: already on {already}"
        return {"label": label, "actions": [stop], "isRecommended": True}
    create, label = _create(ctx, plan, med)
    return {"label": label, "actions": [create, *([stop] if stop else [])], "isRecommended": True}


def replace_draft_suggestion(
    ctx: CardContext, plan: SwitchPlan, med: MedicationUse, draft: dict[str, Any]
) -> dict[str, Any]:
    """Order hooks: create the human insulin FIRST, then remove the animal-insulin draft; a referral and
    the removal when a specialist team doses the switch."""
    switch = ctx.knowledge.wording.switch
    delete = {
        "type": "delete",
        "description": switch.delete_description.format(medication=_short(med.name)),
        "resourceId": f"MedicationRequest/{draft.get('id')}",
    }
    if mode(ctx, plan, med) == "specialist":
        referral = referral_to_team(ctx, plan, [med])
        return {**referral, "actions": [*referral["actions"], delete]}
    create, label = _create(ctx, plan, med)
    return {"label": label, "actions": [create, delete], "isRecommended": True}


def switch_phrases(
    ctx: CardContext, plan: SwitchPlan, meds: list[MedicationUse], escape: Any
) -> dict[str, str]:
    """The switch for a summary ({switch}) and its sentences for the prose, from the plan: the first
    medication's mode decides the summary; every mode present gets its sentence, then the supervision."""
    switch = ctx.knowledge.wording.switch
    modes = list(dict.fromkeys(mode(ctx, plan, m) for m in meds)) or ["reduce"]
    values = plan_values(ctx, plan, meds, escape)
    sentences = [
        switch.plan["reduce_risk" if m == "reduce" and values["risk"] else m].format(**values) for m in modes
    ]
    if "specialist" not in modes:
        sentences.append(_supervision(ctx, plan))
    return {"summary": switch.summary[modes[0]].format(**values), "prose": " ".join(sentences)}


def plan_values(ctx: CardContext, plan: SwitchPlan, meds: list[MedicationUse], escape: Any) -> dict[str, str]:
    switch = ctx.knowledge.wording.switch
    group = switch.specialists.get(plan.specialist or "", {"reason": "", "team": ""})
    dosed = [d for m in meds for d in planned_doses(ctx, plan, m) if d.applied is not None]
    cuts = [reduction(ctx.knowledge, plan, m.species) for m in meds]
    covering = next((c for m in meds if (c := covering_insulin(ctx.facts, m)) is not None), None)
    steroids = [m for m in ctx.facts.medications if m.current and m.systemic_glucocorticoid]
    return {
        "percent": percent_text([d.applied or 0.0 for d in dosed])
        if dosed
        else percent_text([c.percent for c in cuts]),
        "reasons": "; ".join(dict.fromkeys(r for c in cuts for r in c.reasons)),
        "risk": risk_phrase(ctx, plan, escape),
        "reason": group["reason"],
        "team": group["team"],
        "covered": escape(_covering_text(covering)) if covering else "human insulin",
        "medication": escape(_drug_name(meds[0].name)) if meds else "the animal insulin",
        "steroid": escape(steroids[0].glucocorticoid or _short(steroids[0].name, 30))
        if steroids
        else "a glucocorticoid",
    }


def _covering_text(use: MedicationUse) -> str:
    name = _drug_name(use.name)
    return f"{name} {use.daily_units:g} U/day" if use.daily_units is not None else name


def risk_phrase(ctx: CardContext, plan: SwitchPlan, escape: Any) -> str:
    """The first hypoglycaemia risk factor as the patient's value: "glucose 46 mg/dL on 2 Dec 2026",
    "age 78", "impaired awareness of hypoglycaemia", "eGFR 24 mL/min/1.73m2", "on prednisolone"."""
    if not plan.risks or not plan.risks[0].evidence:
        return ""
    fact = plan.risks[0].evidence[0].fact
    evidence = plan.risks[0].evidence
    labs = [e.fact for e in evidence if isinstance(e.fact, LabResult) and e.fact.value is not None]
    if labs:  # the lowest glucose or eGFR that makes the risk, not merely the newest
        fact = min(labs, key=lambda r: r.value or 0.0)
    if isinstance(fact, LabResult):
        label = ctx.knowledge.labs[fact.kind].display
        name = label if label[1:2].isupper() else label[:1].lower() + label[1:]  # "eGFR", "glucose"
        value = LabDisplay(ctx.knowledge).result(fact, both=False, escape=escape)
        return f"{name} {value} on {day(fact.when)}"
    if isinstance(fact, PatientFact):
        return f"age {fact.age(ctx.facts.now.date())}"
    if isinstance(fact, MedicationUse):
        return f"on {escape(fact.glucocorticoid or _short(fact.name, 30))}"
    if isinstance(fact, ConditionFact):
        return escape(_short(fact.name, 50))
    return ctx.knowledge.wording.switch.risks[plan.risks[0].name]

"""The proposed switch from animal to human insulin as a card suggestion (issue 14 A1–A3): the human-insulin
order at the reduced dose (``switch_dose``), the note that says why, and the action that stops the animal
insulin. A dose that is not in insulin units is never copied.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from cds_hooks.clinical.cards import record_text
from cds_hooks.clinical.cards.context import CardContext
from cds_hooks.clinical.facts.dosage import is_insulin_unit
from cds_hooks.clinical.facts.model import MedicationUse
from cds_hooks.clinical.switch_dose import reduced_units, reduction


@dataclass(frozen=True)
class Dose:
    """What happened to the dose of one order: reduced (original → new units), or not copied."""

    original: float | None  # units per administration (None: no dose in units)
    new: int | None
    unit_text: str | None = None  # the dose as written when it is not in insulin units


def _dose_text(quantity: dict[str, Any]) -> str:
    value = quantity.get("value")
    unit = quantity.get("unit") or quantity.get("code") or ""
    return f"{value} {unit}".strip()


def reduced_dosage(
    dosages: list[Any], percent: float, dosage_text: str
) -> tuple[list[dict[str, Any]], list[Dose]]:
    """A copy of ``dosages`` with every dose in insulin units reduced; doses in any other unit (a
    ``{pill}``, mL, a range or a rate) are removed, never copied. Returns the dosages and what was done."""
    out: list[dict[str, Any]] = []
    doses: list[Dose] = []
    for dosage in dosages:
        if not isinstance(dosage, dict):
            continue
        new_dosage = copy.deepcopy(dosage)
        entries = [e for e in new_dosage.get("doseAndRate") or [] if isinstance(e, dict)]
        quantities = [e.get("doseQuantity") for e in entries]
        if (
            entries
            and all(
                isinstance(q, dict)
                and isinstance(q.get("value"), int | float)
                and not isinstance(q.get("value"), bool)
                and q["value"] >= 0
                and is_insulin_unit(q)
                for q in quantities
            )
            and not any("doseRange" in e or "rateQuantity" in e or "rateRange" in e for e in entries)
        ):
            for entry in entries:
                quantity = entry["doseQuantity"]
                original, new = float(quantity["value"]), reduced_units(float(quantity["value"]), percent)
                quantity["value"] = new
                doses.append(Dose(original=original, new=new))
                new_dosage["text"] = dosage_text.format(
                    dose=new, original=f"{original:g}", percent=f"{percent:g}"
                )
        else:
            shown = ", ".join(_dose_text(q) for q in quantities if isinstance(q, dict)) or None
            new_dosage.pop("doseAndRate", None)
            new_dosage.pop("text", None)  # it states the dose that was not copied
            doses.append(Dose(original=None, new=None, unit_text=shown))
        out.append(new_dosage)
    return out, doses


def replacement_request(ctx: CardContext, med: MedicationUse) -> tuple[dict[str, Any], str]:
    """A draft MedicationRequest for recombinant human insulin of the same action profile at the reduced
    dose, with a note stating the original dose, the reduction and why, and the hypoglycaemia warning.
    Also returns a short phrase for the dose (for the suggestion's label)."""
    wording = ctx.knowledge.wording
    switch = wording.switch
    replacement = wording.replacements.get(med.insulin_profile or "unknown", wording.replacements["unknown"])
    cut = reduction(ctx.knowledge, ctx.findings, med.species)
    source = med.source
    name = record_text.plain(med.name)
    raw = []
    if source is not None:
        found = source.get("dosageInstruction") or source.get("dosage")
        raw = found if isinstance(found, list) else []
    dosages, doses = reduced_dosage(raw, cut.percent, switch.dosage_text)
    reduced = [d for d in doses if d.new is not None]
    not_copied = [d for d in doses if d.new is None]
    if reduced and not not_copied:
        first = reduced[0]
        note = switch.dose_note.format(
            medication=name,
            original=f"{first.original:g}",
            percent=f"{cut.percent:g}",
            dose=first.new,
            reasons="; ".join(cut.reasons),
        )
        phrase = switch.dose_phrase.format(dose=first.new, original=f"{first.original:g}")
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
        "note": [{"text": f"{note} {switch.hypoglycaemia}"}],
    }
    if dosages:
        resource["dosageInstruction"] = dosages
    return resource, phrase


def _create(ctx: CardContext, med: MedicationUse) -> tuple[dict[str, Any], str]:
    switch = ctx.knowledge.wording.switch
    resource, phrase = replacement_request(ctx, med)
    replacement = record_text.plain(resource["medicationCodeableConcept"]["text"])
    action = {
        "type": "create",
        "description": switch.create_description.format(replacement=replacement, dose=phrase),
        "resource": resource,
    }
    label = switch.label.format(replacement=replacement, dose=phrase, medication=_short(med.name))
    return action, label


def _short(name: str, limit: int = 60) -> str:
    text = record_text.plain(name)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def switch_suggestion(ctx: CardContext, med: MedicationUse) -> dict[str, Any]:
    """Patient-view: create the human insulin FIRST (the Sandbox applies only the first action), then
    stop the animal-insulin prescription. A medication statement is not an order: no action on it (the
    card's detail names the product to stop)."""
    switch = ctx.knowledge.wording.switch
    create, label = _create(ctx, med)
    actions = [create]
    source = med.source
    if source is not None and source.get("resourceType") == "MedicationRequest" and source.get("id"):
        stopped = copy.deepcopy(source)
        stopped["status"] = "stopped"
        stopped["statusReason"] = {"text": switch.status_reason}
        actions.append(
            {
                "type": "update",
                "description": switch.update_description.format(medication=_short(med.name)),
                "resource": stopped,
            }
        )
    return {"label": label, "actions": actions, "isRecommended": True}


def replace_draft_suggestion(ctx: CardContext, med: MedicationUse, draft: dict[str, Any]) -> dict[str, Any]:
    """Order hooks: create the human insulin FIRST, then remove the animal-insulin draft."""
    switch = ctx.knowledge.wording.switch
    create, label = _create(ctx, med)
    delete = {
        "type": "delete",
        "description": switch.delete_description.format(medication=_short(med.name)),
        "resourceId": f"MedicationRequest/{draft.get('id')}",
    }
    return {"label": label, "actions": [create, delete], "isRecommended": True}

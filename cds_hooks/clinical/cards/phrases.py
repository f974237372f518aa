"""The phrases a card's templates are filled with: the patient's decisive values ("bovine insulin 42 U/day",
"insulin antibodies 46 U/mL"), read from the typed facts the rule result cites (``Evidence.fact``)."""

from __future__ import annotations

import re
from typing import Any

from cds_hooks.clinical.cards.context import CardContext
from cds_hooks.clinical.cards.lab_display import LabDisplay, mg
from cds_hooks.clinical.cards.switch_order import plan_of, plan_values, switch_phrases
from cds_hooks.clinical.facts.model import ConditionFact, Evidence, LabResult, MedicationUse
from cds_hooks.clinical.findings import Finding
from cds_hooks.clinical.rules import RuleResult

SIGNS_FALLBACK = "the findings below"  # {signs} when no finding gives a value to quote


def _cited(finding: Finding, cited: set[Evidence]) -> bool:
    return bool(finding) and any(e in cited for e in finding.evidence)


class Values:
    """The placeholders of a card's templates for one rule result, escaped with ``escape`` (plain text
    for the summary, markdown for the detail)."""

    def __init__(self, ctx: CardContext, result: RuleResult, escape: Any, max_signs: int = 2) -> None:
        self.ctx, self.result, self.escape, self.max_signs = ctx, result, escape, max_signs
        self.cited = set(result.evidence)
        self.display = LabDisplay(ctx.knowledge)
        self.placeholders: set[str] = set()  # of the template being filled

    def _lab(self, r: LabResult, *, name: bool = True, both: bool = False) -> str:
        value = self.display.result(r, both=both, escape=self.escape)
        label = self.ctx.knowledge.labs[r.kind].display
        return f"{lower_first(label)} {value}" if name else value

    def _results(self, finding: Finding) -> list[LabResult]:
        return [e.fact for e in finding.evidence if isinstance(e.fact, LabResult)]

    def _animal_uses(self) -> list[MedicationUse]:
        if self.result.switch_from:
            return list(self.result.switch_from)
        if self.result.replace_drafts:
            return [use for use, _ in self.result.replace_drafts]
        return [
            m for e in self.result.evidence if isinstance(m := e.fact, MedicationUse) and m.animal_insulin
        ]

    def _species(self) -> list[str | None]:
        return [m.species for m in self._animal_uses()]

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
        """The cut actually applied after rounding (issue 22 A2), over the doses the card proposes."""
        return self._switch_values()["percent"]

    def _switch_values(self) -> dict[str, str]:
        plan = plan_of(self.ctx, self.result.plan)
        return plan_values(self.ctx, plan, self._animal_uses(), self.escape)

    def switch(self) -> str:
        """How the switch is made: "switch to human insulin 20 % lower", "… under the paediatric diabetes
        team", "stop it: already on insulin glargine 70 U/day" (issue 22 A2–A5, B7)."""
        plan = plan_of(self.ctx, self.result.plan)
        return switch_phrases(self.ctx, plan, self._animal_uses(), self.escape)["summary"]

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
            condition = e.fact
            if isinstance(condition, ConditionFact) and e in self.cited:
                return _condition_name(self.escape(condition.name))
        return None

    def autoimmunity(self) -> str:
        f = self.ctx.findings
        condition = self._cited_condition(f.autoimmune_disease)
        if condition is not None:
            return condition
        ana = self._results(f.ana_positive)
        if ana and any(r.evidence in self.cited for r in ana):
            return f"ANA {self.display.result(ana[0], escape=self.escape)}"
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
                return f"{lower_first(label)} {prefix}{self._lab(top, name=False)}"
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
            unit = self.display.reported_unit(high)
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
        return lower_first(diagnosis) if diagnosis is not None else signs

    def resistance(self) -> str:
        """Rule 1: no sign of antibody-mediated resistance, saying so even with antibodies."""
        if _cited(self.ctx.findings.insulin_antibody_positive, self.cited):
            return f"{self.antibody()}, but no sign of resistance"
        return "no sign of antibody resistance"

    def _steroid_uses(self) -> list[MedicationUse]:
        return [
            m
            for e in self.result.evidence
            if isinstance(m := e.fact, MedicationUse) and m.systemic_glucocorticoid
        ]

    def steroid(self) -> str:
        """The steroid and its daily dose, with the prednisolone equivalent and its unit when the drug is
        another ("Dexamethasone 8 mg/day (prednisolone-equivalent 53 mg/day)"); the equivalent is left
        out when the summary would otherwise reach the limit (the evidence always has it)."""
        uses = self._steroid_uses()
        if not uses:
            return "Glucocorticoid"
        use = uses[0]
        if use.glucocorticoid and use.daily_mg is not None:
            text = f"{use.glucocorticoid} {mg(use.daily_mg)} mg/day"
            equivalent = use.prednisolone_mg
            if equivalent is not None and abs(equivalent - use.daily_mg) >= 0.05 and self.max_signs > 1:
                text += f" (prednisolone-equivalent {_equivalent(equivalent)} mg/day)"
            return upper_first(text)
        name = use.glucocorticoid or _short(self.escape(use.name), 40)
        return upper_first(f"{name}, dose unknown" if self.result.dose_unknown else name)

    def steroid_action(self) -> str:
        """Why glucose stays up day and night: dexamethasone's day-long action, else the divided regimen."""
        phrases = self.ctx.knowledge.wording.cards[self.result.rule_id].phrases
        if any(m.all_day for m in self._steroid_uses()):
            return phrases["action_dexamethasone"]
        return phrases["action_divided"]

    def steroid_step(self) -> str:
        """The treatment step when readings stay high (JBDS-IP 08): without known diabetes a morning
        gliclazide; with diabetes (a diagnosis or insulin) added treatment; no dose where the diabetes or a
        specialist team decides (pregnancy, kidney disease on the record)."""
        phrases = self.ctx.knowledge.wording.cards[self.result.rule_id].phrases
        facts, f = self.ctx.facts, self.ctx.findings
        if facts.has_condition("pregnancy") or facts.has_condition("ckd-uraemia"):
            return phrases["step_specialist"]
        if f.diabetes or f.current_insulin:
            return phrases["step_diabetes"]
        return phrases["step_no_diabetes"]

    def dose(self) -> str:
        units = [u.daily_units for u, _ in self.ctx.drafts if u.insulin and u.daily_units is not None]
        units += [
            m.daily_units
            for e in self.result.evidence
            if isinstance(m := e.fact, MedicationUse) and m.insulin and m.daily_units
        ]
        return f"{max(units):g} U/day" if units else "an extreme dose"

    def medications(self) -> str:
        return ", ".join(self.escape(m) for m in self.result.medications) or "see evidence"

    def _test_name(self, kind: str) -> str:
        k = self.ctx.knowledge
        name = k.labs[kind].display if kind in k.labs else k.workup[kind].text.split(",")[0]
        return name if len(name) > 1 and not name[1].isalpha() else lower_first(name)  # "C-peptide" stays

    def proposed_tests(self) -> str:
        """The tests this card proposes, named (issue 22 D13): "Proposed: insulin."; that they are
        pending when only pending ones remain; nothing when every test is on record."""
        names = [self._test_name(kind) for kind in self.result.workup if kind in self.ctx.knowledge.workup]
        if names:
            listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
            return f"Proposed: {listed}."
        if self.result.pending:
            return "The tests are pending (below)."
        return "The tests are on record (below)."

    def diabetes_criteria(self) -> str:
        """The diagnostic thresholds the hyperglycaemia finding applies (ADA; knowledge/thresholds.toml)."""
        k = self.ctx.knowledge
        return (
            f"fasting glucose ≥ {k.threshold('glucose_hyper_fasting'):g} mg/dL, "
            f"HbA1c ≥ {k.threshold('hba1c_hyper'):g} % or random glucose ≥ "
            f"{k.threshold('glucose_hyper_random'):g} mg/dL"
        )

    def feature(self) -> str:
        """The first feature of type B that obesity does not explain the card cites (issue 22 D10)."""
        for e in self.ctx.findings.type_b_support.evidence:
            if e not in self.cited:
                continue
            fact = e.fact
            if isinstance(fact, LabResult) and fact.kind != "body_weight":
                return self._lab(fact, both=False)
            if fact is None and "U/kg/day" in e.text:
                return e.text.split(" = ")[-1]
        return "a feature obesity does not explain"

    def secretagogue(self) -> str:
        """The sulfonylurea or meglitinide the card cites, else the positive screen (issue 22 D11)."""
        uses = [
            e.fact
            for e in self.ctx.findings.secretagogue.evidence
            if isinstance(e.fact, MedicationUse) and e in self.cited
        ]
        if uses:
            return _short(self.escape(uses[0].name), 40)
        return "Sulfonylurea screen positive"

    def lookback(self) -> str:
        return f"{self.ctx.knowledge.threshold('glycaemia_screen_lookback'):g}"

    def fill(self, template: str) -> str:
        self.placeholders = set(re.findall(r"\{(\w+)\}", template))
        return template.format(**{name: getattr(self, name)() for name in self.placeholders})


def _equivalent(value: float) -> str:
    """A prednisolone equivalent: whole mg from 10 mg up ("53"), one decimal below ("7.6")."""
    return f"{round(value):d}" if value >= 10 else mg(value)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _condition_name(name: str, limit: int = 45) -> str:
    """A condition's name as recorded, without its qualifiers ("SLE with organ involvement" → "SLE")."""
    head = re.split(r",\s| with | without |\s\(", name, maxsplit=1)[0]
    return _short(head, limit)


def upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def lower_first(text: str) -> str:
    """ "Glucose" → "glucose" inside a sentence; acronyms ("HbA1c", "ANA") stay."""
    return text if any(c.isupper() for c in text[1:]) else text[:1].lower() + text[1:]

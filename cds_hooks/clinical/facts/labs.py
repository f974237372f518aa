"""Laboratory facts: Observations → normalised ``LabResult``s of a known kind, within their windows.

Observations are indexed by exact code first (a dict lookup per coding); only kinds whose value set
has text patterns (antibodies often arrive with a local code and text) fall back to text matching.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cds_hooks.clinical.facts.model import Evidence, LabResult, UnusableResult
from cds_hooks.clinical.knowledge import Knowledge, LabKind
from cds_hooks.clinical.units import to_canonical
from cds_hooks.fhir.concept_memo import Memo, concept_key
from cds_hooks.fhir.dates import format_date, parse_fhir_datetime
from cds_hooks.fhir.json_access import obj, objects, string

MAX_TEXT_HITS = 20_000  # a bound on the per-classifier cache of display texts (hostile input cannot grow it)
VALID_STATUSES = frozenset({"final", "amended", "corrected"})

# Kinds are tried in this order, so that "insulin receptor antibody" is never read as insulin.
KIND_PRECEDENCE = (
    "insulin_receptor_antibody",
    "insulin_antibody",
    "ana",
    "ogtt_2h",
    "glucose_fasting",
    "glucose",
    "hba1c",
    "insulin",
    "c_peptide",
    "body_weight",
    "bmi",
    "triglycerides",
    "shbg",
    "adiponectin",
    "proinsulin",
    "beta_hydroxybutyrate",
    "sulfonylurea_screen",
    "egfr",
    "pregnancy_status",
    "cgm_glucose",
)

POSITIVE_INTERPRETATIONS = frozenset({"H", "HH", "HU", "POS", "A", "AA", "DET", "R", "IND"})
NEGATIVE_INTERPRETATIONS = frozenset({"N", "NEG", "ND", "L", "NR"})
SNOMED = "http://snomed.info/sct"
# positive, detected, present; and, for a pregnancy status (LOINC 82810-3), 77386006 "Pregnant"
SNOMED_POSITIVE = frozenset({"10828004", "260373001", "52101004", "77386006"})
SNOMED_NEGATIVE = frozenset({"260385009", "260415000", "2667000"})  # negative, not detected, absent
_POSITIVE_TEXT = re.compile(r"^\s*(positive|pos|detected|reactive|present|abnormal|pregnant)\b", re.I)
_NEGATIVE_TEXT = re.compile(
    r"^\s*(negative|neg|not detected|undetected|non-?reactive|absent|normal|none|not pregnant)\b", re.I
)
_TITRE = re.compile(r"^\s*1\s*:\s*(\d+(?:\.\d+)?)\s*$")


@dataclass
class LabClassifier:
    """Maps an Observation's code to a lab kind, built once per knowledge."""

    knowledge: Knowledge

    def __post_init__(self) -> None:
        # Every kind of knowledge/labs.toml is read: one not named in KIND_PRECEDENCE comes after those
        # named (a kind missing from the tuple was silently never read: eGFR, pregnancy status, CGM).
        order = [*KIND_PRECEDENCE, *(k for k in self.knowledge.labs if k not in KIND_PRECEDENCE)]
        self._by_code: dict[tuple[str, str], str] = {}
        for kind in reversed(order):  # earlier kinds win on a shared code
            lab = self.knowledge.labs.get(kind)
            if lab is None:
                continue
            for system, codes in lab.valueset.exact_codes().items():
                for code in codes:
                    self._by_code[(system, code)] = kind
        # Only kinds with text patterns can match a concept whose codes are not listed.
        self._fallback = [
            self.knowledge.labs[k]
            for k in order
            if k in self.knowledge.labs and self.knowledge.labs[k].valueset.text_pattern is not None
        ]
        self._memo: Memo[str | None] = Memo(self._classify)
        self._text_hits: dict[str, bool] = {}
        # One pre-check for all of them: most unlisted concepts (vitals, CBC, lipids) match no text at all.
        patterns = [lab.valueset.text_pattern.pattern for lab in self._fallback if lab.valueset.text_pattern]
        self._any_text = (
            re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE) if patterns else None
        )

    def kind_of(self, code: Any) -> str | None:
        if not isinstance(code, dict):
            return None
        codings = objects(code.get("coding"))
        for coding in codings:  # every Observation of the record passes here: kept to dict look-ups
            system, value = coding.get("system"), coding.get("code")
            if isinstance(system, str) and isinstance(value, str):
                kind = self._by_code.get((system, value))
                if kind:
                    return kind
        if self._any_text is None or not (
            self._text_may_match(code.get("text"))
            or any(self._text_may_match(c.get("display")) for c in codings)
        ):
            return None
        return self._memo.get(concept_key(code), code)

    def _text_may_match(self, text: Any) -> bool:
        """Whether any lab kind's text pattern matches ``text``; a dict look-up after the first time (the
        same few hundred displays recur in every record)."""
        if not isinstance(text, str):
            return False
        hit = self._text_hits.get(text)
        if hit is None:
            hit = self._any_text is not None and self._any_text.search(text) is not None
            if len(self._text_hits) >= MAX_TEXT_HITS:
                self._text_hits.clear()
            self._text_hits[text] = hit
        return hit

    def _classify(self, code: dict[str, Any]) -> str | None:
        for lab in self._fallback:
            if lab.valueset.matches_concept(code):
                return lab.name
        return None


@functools.lru_cache(maxsize=8)
def lab_classifier(knowledge: Knowledge) -> LabClassifier:
    """One classifier per knowledge (``Knowledge`` hashes by identity), shared by every request."""
    return LabClassifier(knowledge)


def observation_date(obs: dict[str, Any]) -> datetime | None:
    """effectiveDateTime, else effectivePeriod.start, else issued."""
    when = parse_fhir_datetime(obs.get("effectiveDateTime"))
    if when is None and isinstance(obs.get("effectivePeriod"), dict):
        when = parse_fhir_datetime(obs["effectivePeriod"].get("start"))
    if when is None:
        when = parse_fhir_datetime(obs.get("effectiveInstant")) or parse_fhir_datetime(obs.get("issued"))
    return when


def _interpretation(obs: dict[str, Any]) -> bool | None:
    for concept in objects(obs.get("interpretation")):
        if not isinstance(concept, dict):
            continue
        for coding in objects(concept.get("coding")):
            code = string(coding.get("code")) if isinstance(coding, dict) else None
            if code in POSITIVE_INTERPRETATIONS:
                return True
            if code in NEGATIVE_INTERPRETATIONS:
                return False
        verdict = _text_verdict(concept.get("text"))
        if verdict is not None:
            return verdict
    return None


def _text_verdict(text: Any) -> bool | None:
    if not isinstance(text, str):
        return None
    if _NEGATIVE_TEXT.match(text):
        return False
    if _POSITIVE_TEXT.match(text):
        return True
    return None


def _titre_verdict(denominator: float | None, threshold: float) -> bool | None:
    return None if denominator is None else denominator >= threshold


def _ratio_denominator(ratio: Any) -> float | None:
    if not isinstance(ratio, dict):
        return None
    num = obj(ratio.get("numerator")).get("value")
    den = obj(ratio.get("denominator")).get("value")
    if isinstance(num, int | float) and isinstance(den, int | float) and num > 0:
        return float(den) / float(num)
    return None


def _above_reference_range(obs: dict[str, Any], value: float) -> bool | None:
    for rng in objects(obs.get("referenceRange")):
        high = obj(rng.get("high")).get("value") if isinstance(rng, dict) else None
        if isinstance(high, int | float) and not isinstance(high, bool):
            return value > high
    return None


def _describe(lab: LabKind, obs: dict[str, Any], when: datetime, shown: str) -> Evidence:
    rid = obs.get("id")
    return Evidence(
        reference=f"Observation/{rid}" if isinstance(rid, str) else "",
        text=f"{lab.display}: {shown} on {format_date(when)}",
    )


def read_observation(
    obs: dict[str, Any], lab: LabKind, when: datetime, ana_threshold: float
) -> LabResult | UnusableResult:
    """Read one Observation's value the way real EHRs send it (quantity, coded, string, ratio)."""
    interpretation = _interpretation(obs)
    positive: bool | None = interpretation
    value: float | None = None
    shown = ""
    is_ana = lab.name == "ana"
    titre: float | None = None

    quantity = obs.get("valueQuantity")
    if (
        isinstance(quantity, dict)
        and isinstance(quantity.get("value"), int | float)
        and not isinstance(quantity.get("value"), bool)
    ):
        raw = float(quantity["value"])
        unit, code = quantity.get("unit"), quantity.get("code")
        shown = f"{_num(raw)} {unit or code or ''}".strip()
        if lab.unit:
            value = to_canonical(
                lab, raw, unit if isinstance(unit, str) else None, code if isinstance(code, str) else None
            )
            if value is None:
                return UnusableResult(
                    lab.name, f"unknown unit {unit or code or '(none)'!r}", _describe(lab, obs, when, shown)
                )
            if (unit or code) != lab.unit:
                shown += f" (= {_num(value)} {lab.unit})"
        if positive is None:
            positive = _above_reference_range(obs, raw)
    elif isinstance(obs.get("valueCodeableConcept"), dict):
        concept = obs["valueCodeableConcept"]
        shown = (
            concept.get("text")
            or next(
                (
                    c.get("display") or c.get("code")
                    for c in objects(concept.get("coding"))
                    if isinstance(c, dict)
                ),
                "",
            )
            or ""
        )
        if positive is None:
            for coding in objects(concept.get("coding")):
                if isinstance(coding, dict) and coding.get("system") == SNOMED:
                    if string(coding.get("code")) in SNOMED_POSITIVE:
                        positive = True
                    elif string(coding.get("code")) in SNOMED_NEGATIVE:
                        positive = False
            if positive is None:
                positive = _text_verdict(shown)
    elif isinstance(obs.get("valueString"), str):
        text = obs["valueString"]
        shown = text[:60]
        if positive is None:
            match = _TITRE.match(text)
            if match:
                titre = float(match.group(1))
                positive = _titre_verdict(titre, ana_threshold) if is_ana else None
            else:
                positive = _text_verdict(text)
    elif isinstance(obs.get("valueRatio"), dict):
        denominator = _ratio_denominator(obs["valueRatio"])
        titre = denominator
        shown = f"1:{_num(denominator)}" if denominator else "ratio"
        if positive is None and is_ana:
            positive = _titre_verdict(denominator, ana_threshold)

    if value is None and positive is None:
        reason = "no value" if not shown else f"result {shown!r} could not be interpreted"
        return UnusableResult(lab.name, reason, _describe(lab, obs, when, shown or "no value"))
    if positive is not None and not lab.unit:
        shown = (
            f"{shown} ({'positive' if positive else 'negative'})"
            if shown
            else ("positive" if positive else "negative")
        )
    return LabResult(
        kind=lab.name,
        when=when,
        value=value,
        unit=lab.unit if value is not None else None,
        positive=positive,
        evidence=_describe(lab, obs, when, shown),
        titre=titre if is_ana else None,
        reported_unit=_reported_unit(obs),
        reported_value=_reported_value(obs),
    )


def _reported_unit(obs: dict[str, Any]) -> tuple[str | None, str | None] | None:
    """The (unit, code) of the reported quantity: the card shows a value in the unit the lab used."""
    quantity = obs.get("valueQuantity")
    if not isinstance(quantity, dict):
        return None
    unit, code = quantity.get("unit"), quantity.get("code")
    return (unit if isinstance(unit, str) else None, code if isinstance(code, str) else None)


def _reported_value(obs: dict[str, Any]) -> str | None:
    """The value as the laboratory wrote it, for qualitative kinds (antibodies, ANA)."""
    quantity = obs.get("valueQuantity")
    if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
        unit = quantity.get("unit") or quantity.get("code") or ""
        return f"{quantity['value']:g} {unit if isinstance(unit, str) else ''}".strip()
    if isinstance(obs.get("valueString"), str):
        return obs["valueString"][:40]
    ratio = obs.get("valueRatio")
    if isinstance(ratio, dict):
        num = (ratio.get("numerator") or {}).get("value")
        den = (ratio.get("denominator") or {}).get("value")
        if isinstance(num, int | float) and isinstance(den, int | float) and num:
            return f"1:{den / num:g}"
    return None


def _codings(code: Any) -> frozenset[tuple[str | None, str | None]] | str | None:
    """What makes two results "the same code": their codings, else the code's text."""
    found = frozenset(
        (string(c.get("system")), string(c.get("code"))) for c in objects(obj(code).get("coding"))
    )
    return found or string(obj(code).get("text"))


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def collect_labs(
    observations: list[dict[str, Any]],
    knowledge: Knowledge,
    now: datetime,
    classifier: LabClassifier | None = None,
    problem: Callable[[dict[str, Any]], str | None] | None = None,
) -> tuple[dict[str, list[LabResult]], list[UnusableResult], dict[str, datetime]]:
    """Results per kind (newest first) within each kind's window; unusable ones; newest date per kind.
    Copies of one result (same code, time and value, e.g. from two feeds) count once."""
    classifier = classifier or lab_classifier(knowledge)
    ana_threshold = knowledge.threshold("ana_titre_positive")
    labs: dict[str, list[LabResult]] = {}
    unusable: list[UnusableResult] = []
    last: dict[str, datetime] = {}
    seen: set[Any] = set()
    horizon = now + timedelta(days=1)  # tolerate clock skew, ignore future-dated results
    for obs in observations:
        if string(obs.get("status")) not in VALID_STATUSES:
            continue
        kind = classifier.kind_of(obs.get("code"))
        if kind is None:
            continue
        when = observation_date(obs)
        if when is None or when > horizon:
            continue
        if kind not in last or when > last[kind]:
            last[kind] = when
        lab = knowledge.labs[kind]
        if when < now - timedelta(days=lab.lookback_days):
            continue
        invalid = problem(obs) if problem else None
        if invalid:
            unusable.append(UnusableResult(kind, invalid, _describe(lab, obs, when, "result")))
            continue
        result = read_observation(obs, lab, when, ana_threshold)
        if isinstance(result, UnusableResult):
            unusable.append(result)
            continue
        copy = (_codings(obs.get("code")), when, result.value, result.positive, result.titre)
        if copy not in seen:
            seen.add(copy)
            labs.setdefault(kind, []).append(result)
    for results in labs.values():
        results.sort(key=lambda r: r.when, reverse=True)
    return labs, unusable, last

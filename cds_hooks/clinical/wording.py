"""Card wording, the switch to human insulin and the knowledge version, loaded from
``knowledge/cards/*.toml``, ``knowledge/replacements.toml`` and ``knowledge/version.toml`` so clinicians
can change what a card says without touching Python.

Summaries are templates: ``{placeholders}`` are filled with the patient's decisive values (see
``cards.SUMMARY_VALUES``); the loader checks every template names only known placeholders and that the
text without them leaves room under the 140-character limit.
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INDICATORS = ("info", "warning", "critical")
SUMMARY_LIMIT = 140  # CDS Hooks: summary SHALL be under 140 characters (O2)
PROSE_WORD_LIMIT = 60  # issue 14: the prose before the evidence reads in ten seconds

# Every placeholder a template may use; the card renderer fills them (cds_hooks.clinical.cards).
PLACEHOLDERS = frozenset(
    {
        "regimen",  # "Bovine insulin 42 U/day"
        "resistance",  # "no sign of antibody resistance" (with the antibody result when positive)
        "animal",  # "Bovine insulin" (current or past exposure)
        "reduction",  # "20 %": the cut actually applied after rounding
        "switch",  # "switch to human insulin 20 % lower", "switch to human insulin under the …"
        "signs",  # "glucose CV 48 %", "insulin 245 U/day", ...
        "signs_or_diabetes",  # the signs, else the cited diagnosis: "type 2 diabetes mellitus"
        "antibody",  # "insulin antibodies 46 U/mL"
        "receptor",  # "insulin-receptor antibody positive"
        "autoimmunity",  # "Hashimoto thyroiditis", "ANA 1:320"
        "glycaemia",  # "glucose up to 16.8 mmol/L (303 mg/dL)"
        "steroid",  # "Prednisolone 40 mg/day", "Dexamethasone 8 mg/day (prednisolone-equivalent 53 mg/day)"
        "steroid_action",  # why glucose stays up day and night: dexamethasone, a twice-daily regimen
        "steroid_step",  # the treatment step when readings stay high (with or without known diabetes)
        "insulin_level",  # "insulin 242 µIU/mL"
        "hypoglycaemia",  # "fasting glucose 2.8 mmol/L (50 mg/dL)"
        "lookback",  # "365"
        "medications",  # names of the medications the card is about
        "dose",  # ordered daily insulin dose: "300 U/day"
        "proposed_tests",  # "Proposed: insulin." (the tests the card proposes, or that they are pending)
        "diabetes_criteria",  # "fasting glucose ≥ 126 mg/dL, HbA1c ≥ 6.5 % or random glucose ≥ 200 mg/dL"
        "feature",  # the type B feature obesity does not explain: "BMI 27.5 kg/m2", "triglycerides 95 mg/dL"
        "secretagogue",  # "Glipizide 5 mg oral tablet" or "Sulfonylurea screen positive"
    }
)


class WordingError(ValueError):
    """A card wording file is missing something the cards need."""


@dataclass(frozen=True)
class Variant:
    summary: str  # template
    detail: str  # prose template (markdown), before the evidence
    summary_no_switch: str | None = None  # when the card proposes no switch (past exposure only)
    detail_no_switch: str | None = None
    all_day: bool = False  # proposes the card's [monitoring_all_day] test instead of [monitoring]


@dataclass(frozen=True)
class RulePage:
    """What the rule's source page says about it (knowledge/cards/<rule-id>.toml, [page])."""

    title: str
    fires: str  # markdown
    proposes: str  # markdown
    references: tuple[str, ...]  # further sources, one line each


@dataclass(frozen=True)
class CardWording:
    rule_id: str
    name: str  # how another card names this one when it defers to it (issue 22 B7)
    indicator: str
    variants: dict[str, Variant]
    page: RulePage
    monitoring: TimedTest | None = None  # a timed test the card proposes (glucocorticoid: pre-meal glucose)
    # Days an override with a snoozing reason keeps this rule's card away for that patient.
    snooze_days: int = 90
    monitoring_all_day: TimedTest | None = None  # proposed by a variant with ``all_day``
    # Sentences a phrase of cards/phrases.py picks from by the patient's facts ([phrases]).
    phrases: dict[str, str] = field(default_factory=dict)

    def monitoring_for(self, variant: Variant) -> TimedTest | None:
        if variant.all_day and self.monitoring_all_day is not None:
            return self.monitoring_all_day
        return self.monitoring


@dataclass(frozen=True)
class TimedTest:
    """A test repeated at given times of day (FHIR Timing.repeat.when), e.g. capillary glucose before
    lunch and the evening meal while on a glucocorticoid."""

    system: str
    code: str
    display: str
    text: str
    when: tuple[str, ...]
    label: str
    source: str


@dataclass(frozen=True)
class Replacement:
    """A coded (or text-only) human insulin to propose for one action profile."""

    profile: str
    system: str | None
    code: str | None
    display: str

    def concept(self) -> dict[str, Any]:
        if self.system and self.code:
            return {
                "coding": [{"system": self.system, "code": self.code, "display": self.display}],
                "text": self.display,
            }
        return {"text": self.display}


@dataclass(frozen=True)
class SwitchWording:
    """How a proposed human-insulin order and its suggestion are worded (knowledge/cards/_common.toml)."""

    hypoglycaemia: str  # the safety sentence, on every card and order that switches insulin
    hypoglycaemia_source: str
    label: str
    create_description: str
    update_description: str
    delete_description: str
    dose_note: str
    no_dose_note: str
    non_unit_dose_note: str
    dosage_text: str
    statement_stop: str
    dose_phrase: str
    no_dose_phrase: str
    status_reason: str
    reasons: dict[str, str]
    risks: dict[str, str]  # hypoglycaemia risk factors, named in the order's note (issue 22 A1)
    summary: dict[str, str]  # the {switch} phrase of a summary, per plan mode
    plan: dict[str, str]  # the plan's sentence in a card's prose, per mode, and the supervision
    specialists: dict[str, dict[str, str]]  # group -> reason, team (issue 22 A3)
    referral: dict[str, str]  # label, description and text of the referral made instead of a dose


@dataclass(frozen=True)
class Version:
    version: str
    date: str


@dataclass(frozen=True)
class Wording:
    cards: dict[str, CardWording]
    source_label: str
    evidence_heading: str
    other_causes_heading: str
    unusable_heading: str
    pending_heading: str
    pending_line: str
    deferred_heading: str
    deferred_line: str
    rule_link_label: str
    timeline_link_label: str
    override_reasons: tuple[tuple[str, str], ...]
    replacements: dict[str, Replacement]
    switch: SwitchWording
    unit_labels: dict[str, str]  # canonical unit -> as clinicians write it ("uIU/mL" -> "µIU/mL")
    lab_units: dict[str, tuple[tuple[str, int], ...]]  # lab kind -> (unit, decimals), canonical first
    version: Version

    def snooze_days(self, rule_id: str) -> int:
        """Days a snoozing override keeps ``rule_id``'s card away (the default for a rule with no file)."""
        card = self.cards.get(rule_id)
        return card.snooze_days if card is not None else CardWording.snooze_days


def unwrap(markdown: str) -> str:
    """Join the lines of each paragraph (TOML files are wrapped for reviewers; EHRs render soft breaks
    differently), keeping blank lines and list items."""
    return re.sub(r"(?<=\S)\n(?!\n|\s*(?:[-*+]\s|\d+\.\s))", " ", markdown.strip())


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WordingError(f"{path}: {exc}") from exc


def _template(path: Path, where: str, value: Any, *, summary: bool = False) -> str:
    if not isinstance(value, str) or not value.strip():
        raise WordingError(f"{path}: {where} must be a non-empty string")
    try:
        names = placeholders(value)
    except ValueError as exc:
        raise WordingError(f"{path}: {where}: {exc}") from exc
    unknown = names - PLACEHOLDERS
    if unknown:
        raise WordingError(f"{path}: {where} names unknown placeholders {sorted(unknown)}")
    text = unwrap(value)
    if summary:
        fixed = len(re.sub(r"\{[^}]*\}", "", text))
        if fixed >= SUMMARY_LIMIT - 20:
            raise WordingError(
                f"{path}: {where} has {fixed} characters besides its placeholders; CDS Hooks requires "
                f"summaries under {SUMMARY_LIMIT}, so keep it under {SUMMARY_LIMIT - 20}"
            )
    return text


def _strings(path: Path, where: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise WordingError(f"{path}: {where} must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _timed_test(path: Path, raw: Any, table: str = "monitoring") -> TimedTest | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise WordingError(f"{path}: [{table}] must be a table")
    keys = ("system", "code", "display", "text", "label", "source")
    missing = [k for k in keys if not isinstance(raw.get(k), str) or not raw[k].strip()]
    when = _strings(path, f"[{table}].when", raw.get("when"))
    if missing or not when:
        raise WordingError(f"{path}: [{table}] needs {', '.join(keys)} and a non-empty 'when' list")
    return TimedTest(**{k: raw[k].strip() for k in keys}, when=when)


def _card(path: Path) -> CardWording:
    data = _read(path)
    indicator = data.get("indicator")
    if indicator not in INDICATORS:
        raise WordingError(f"{path}: indicator must be one of {INDICATORS}, got {indicator!r}")
    variants: dict[str, Variant] = {}
    for name, v in (data.get("variants") or {}).items():
        where = f"[variants.{name}]"
        optional = {
            key: _template(path, f"{where}.{key}", v[key], summary=key.startswith("summary"))
            for key in ("summary_no_switch", "detail_no_switch")
            if key in v
        }
        all_day = v.get("all_day", False)
        if not isinstance(all_day, bool):
            raise WordingError(f"{path}: {where}.all_day must be true or false")
        variants[name] = Variant(
            summary=_template(path, f"{where}.summary", v.get("summary"), summary=True),
            detail=_template(path, f"{where}.detail", v.get("detail")),
            all_day=all_day,
            **optional,
        )
    if not variants:
        raise WordingError(f"{path}: no [variants.*] tables")
    page = data.get("page")
    if not isinstance(page, dict):
        raise WordingError(f"{path}: a [page] table (title, fires, proposes, references) is required")
    for key in ("title", "fires", "proposes"):
        if not isinstance(page.get(key), str) or not page[key].strip():
            raise WordingError(f"{path}: [page].{key} must be a non-empty string")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise WordingError(f"{path}: name (how another card names this one) must be a non-empty string")
    return CardWording(
        rule_id=path.stem,
        name=name.strip(),
        indicator=indicator,
        variants=variants,
        page=RulePage(
            title=page["title"].strip(),
            fires=unwrap(page["fires"]),
            proposes=unwrap(page["proposes"]),
            references=_strings(path, "[page].references", page.get("references")),
        ),
        monitoring=_timed_test(path, data.get("monitoring")),
        snooze_days=_snooze_days(path, data.get("snooze_days", 90)),
        monitoring_all_day=_timed_test(path, data.get("monitoring_all_day"), "monitoring_all_day"),
        phrases=_phrases(path, data.get("phrases")),
    )


def _phrases(path: Path, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v.strip() for v in raw.values()):
        raise WordingError(f"{path}: [phrases] must map names to non-empty strings")
    for name, value in raw.items():
        if placeholders(value):
            raise WordingError(f"{path}: [phrases].{name} may not hold placeholders")
    return {str(k): unwrap(v) for k, v in raw.items()}


def _snooze_days(path: Path, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise WordingError(f"{path}: snooze_days must be a whole number of days, at least 1")
    return value


def _switch(path: Path, raw: Any) -> SwitchWording:
    if not isinstance(raw, dict):
        raise WordingError(f"{path}: a [switch] table is required")
    keys = (
        "hypoglycaemia",
        "hypoglycaemia_source",
        "label",
        "create_description",
        "update_description",
        "delete_description",
        "dose_note",
        "no_dose_note",
        "non_unit_dose_note",
        "dosage_text",
        "statement_stop",
        "dose_phrase",
        "no_dose_phrase",
        "status_reason",
    )
    missing = [k for k in keys if not isinstance(raw.get(k), str) or not raw[k].strip()]
    reasons = raw.get("reasons")
    needed = {"porcine", "bovine", "unknown_species", "antibodies", "high_dose", "keep"}
    if missing or not isinstance(reasons, dict) or not needed <= reasons.keys():
        raise WordingError(f"{path}: [switch] needs {', '.join(keys)} and [switch.reasons] {sorted(needed)}")
    tables = {
        "risks": {"level2", "level1", "impaired_awareness", "renal", "older_age", "glucocorticoid"},
        "summary": {"reduce", "keep", "specialist", "covered", "held"},
        "plan": {
            "reduce",
            "reduce_risk",
            "keep",
            "specialist",
            "covered",
            "held",
            "supervision",
            "supervision_cgm",
        },
        "referral": {"label", "description", "text"},
    }
    texts: dict[str, dict[str, str]] = {}
    for table, names in tables.items():
        value = raw.get(table)
        if not isinstance(value, dict) or not names <= value.keys():
            raise WordingError(f"{path}: [switch.{table}] needs {sorted(names)}")
        texts[table] = {k: unwrap(str(v)) for k, v in value.items()}
    specialists = raw.get("specialists")
    groups = {"child", "pregnancy", "dialysis", "pump"}
    if (
        not isinstance(specialists, dict)
        or not groups <= specialists.keys()
        or any(
            not isinstance(specialists[g], dict) or not {"reason", "team"} <= specialists[g].keys()
            for g in groups
        )
    ):
        raise WordingError(f"{path}: [switch.specialists.<group>] needs reason and team for {sorted(groups)}")
    return SwitchWording(
        **{k: unwrap(raw[k]) for k in keys},
        reasons={k: str(v) for k, v in reasons.items()},
        specialists={g: {k: str(v) for k, v in specialists[g].items()} for g in specialists},
        **texts,
    )


def _lab_units(path: Path, raw: Any) -> dict[str, tuple[tuple[str, int], ...]]:
    out: dict[str, tuple[tuple[str, int], ...]] = {}
    for kind, units in (raw or {}).items():
        if not isinstance(units, list) or not all(
            isinstance(u, list) and len(u) == 2 and isinstance(u[0], str) and isinstance(u[1], int)
            for u in units
        ):
            raise WordingError(f"{path}: [lab_units].{kind} must be a list of [unit, decimals] pairs")
        out[kind] = tuple((u, d) for u, d in units)
    return out


def load_wording(root: Path) -> Wording:
    cards_dir = root / "cards"
    common_path = cards_dir / "_common.toml"
    common = _read(common_path)
    cards = {
        path.stem: _card(path) for path in sorted(cards_dir.glob("*.toml")) if not path.name.startswith("_")
    }

    reasons = tuple((r["code"], r["display"]) for r in common.get("override_reasons") or [])
    if not reasons or any(not code or not display for code, display in reasons):
        raise WordingError(f"{common_path}: override_reasons need a code and a display")

    repl = _read(root / "replacements.toml")
    replacements: dict[str, Replacement] = {}
    for profile, entry in repl.items():
        if not isinstance(entry, dict):
            continue
        display = entry.get("display") or entry.get("text")
        if not isinstance(display, str):
            raise WordingError(f"replacements.toml: [{profile}] needs a display or text")
        replacements[profile] = Replacement(
            profile=profile, system=entry.get("system"), code=entry.get("code"), display=display
        )
    if "unknown" not in replacements:
        raise WordingError("replacements.toml: an [unknown] entry is required")

    version = _read(root / "version.toml")
    if not isinstance(version.get("version"), str) or not isinstance(version.get("date"), str):
        raise WordingError(f"{root / 'version.toml'}: 'version' and 'date' (strings) are required")
    return Wording(
        cards=cards,
        source_label=common["source_label"],
        evidence_heading=common["evidence_heading"],
        other_causes_heading=common["other_causes_heading"],
        unusable_heading=common["unusable_heading"],
        pending_heading=common["pending_heading"],
        pending_line=common["pending_line"],
        deferred_heading=common["deferred_heading"],
        deferred_line=common["deferred_line"],
        rule_link_label=common["rule_link_label"],
        timeline_link_label=common["timeline_link_label"],
        override_reasons=reasons,
        replacements=replacements,
        switch=_switch(common_path, common.get("switch")),
        unit_labels={str(k): str(v) for k, v in (common.get("unit_labels") or {}).items()},
        lab_units=_lab_units(common_path, common.get("lab_units")),
        version=Version(version=version["version"], date=str(version["date"])),
    )

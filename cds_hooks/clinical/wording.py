"""Card wording and replacement insulins, loaded from ``knowledge/cards/*.toml`` and
``knowledge/replacements.toml`` so clinicians can edit what a card says without touching Python."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INDICATORS = ("info", "warning", "critical")
SUMMARY_LIMIT = 140  # CDS Hooks: summary SHALL be under 140 characters (O2)


class WordingError(ValueError):
    """A card wording file is missing something the cards need."""


@dataclass(frozen=True)
class Variant:
    summary: str
    detail: str


@dataclass(frozen=True)
class CardWording:
    rule_id: str
    indicator: str
    variants: dict[str, Variant]


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
class Wording:
    cards: dict[str, CardWording]
    source_label: str
    evidence_heading: str
    other_causes_heading: str
    unusable_heading: str
    source_link_label: str
    timeline_link_label: str
    override_reasons: tuple[tuple[str, str], ...]
    replacements: dict[str, Replacement]
    re_titrate_note: str


def _unwrap(markdown: str) -> str:
    """Join the lines of each paragraph (TOML files are wrapped for reviewers; EHRs render soft breaks
    differently), keeping blank lines and list items."""
    return re.sub(r"(?<=\S)\n(?!\n|\s*(?:[-*+]\s|\d+\.\s))", " ", markdown)


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WordingError(f"{path}: {exc}") from exc


def load_wording(root: Path) -> Wording:
    cards_dir = root / "cards"
    common = _read(cards_dir / "_common.toml")
    cards: dict[str, CardWording] = {}
    for path in sorted(cards_dir.glob("*.toml")):
        if path.name.startswith("_"):
            continue
        data = _read(path)
        indicator = data.get("indicator")
        if indicator not in INDICATORS:
            raise WordingError(f"{path}: indicator must be one of {INDICATORS}, got {indicator!r}")
        variants: dict[str, Variant] = {}
        for name, v in (data.get("variants") or {}).items():
            summary, detail = v.get("summary"), v.get("detail")
            if not isinstance(summary, str) or not isinstance(detail, str) or not detail.strip():
                raise WordingError(f"{path}: variant {name!r} needs a summary and a detail")
            if len(summary) >= SUMMARY_LIMIT:
                raise WordingError(
                    f"{path}: variant {name!r} summary has {len(summary)} characters; "
                    f"CDS Hooks requires fewer than {SUMMARY_LIMIT}"
                )
            variants[name] = Variant(summary=summary.strip(), detail=_unwrap(detail.strip()))
        if not variants:
            raise WordingError(f"{path}: no [variants.*] tables")
        cards[path.stem] = CardWording(rule_id=path.stem, indicator=indicator, variants=variants)

    reasons = tuple((r["code"], r["display"]) for r in common.get("override_reasons") or [])
    if not reasons or any(not code or not display for code, display in reasons):
        raise WordingError(f"{cards_dir / '_common.toml'}: override_reasons need a code and a display")

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
    return Wording(
        cards=cards,
        source_label=common["source_label"],
        evidence_heading=common["evidence_heading"],
        other_causes_heading=common["other_causes_heading"],
        unusable_heading=common["unusable_heading"],
        source_link_label=common["source_link_label"],
        timeline_link_label=common["timeline_link_label"],
        override_reasons=reasons,
        replacements=replacements,
        re_titrate_note=str(repl.get("re_titrate_note", "")),
    )

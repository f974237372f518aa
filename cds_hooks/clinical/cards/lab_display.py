"""Laboratory values as clinicians write them (issue 14 C16): in the unit the laboratory reported first,
then in the other usual unit, at clinical precision (mg/dL whole, mmol/L one decimal, insulin whole
µIU/mL and pmol/L, HbA1c one decimal % and whole mmol/mol); dates as "18 Nov 2026".

Units, precision and labels come from ``knowledge/cards/_common.toml`` ([lab_units], [unit_labels]);
conversions from ``knowledge/labs.toml``, so a value is never converted with a factor the knowledge does
not hold.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cds_hooks.clinical.cards import record_text
from cds_hooks.clinical.facts.model import LabResult
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.clinical.units import find_conversion

# A reported value that already says the verdict ("Positive", "NEGATIVE (immunoprecipitation)").
_VERDICT_WORD = re.compile(
    r"^\s*(positive|pos|negative|neg|detected|not detected|undetected|reactive|non-?reactive|present|"
    r"absent|normal|abnormal|none)\b",
    re.I,
)


def day(when: datetime) -> str:
    return _day(when.year, when.month, when.day)


@functools.lru_cache(maxsize=4096)
def _day(year: int, month: int, day_of_month: int) -> str:
    """ "5 Nov 2026": formatted once per date (strftime is slow, and the same dates recur)."""
    return f"{day_of_month} {_MONTHS[month - 1]} {year}"


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def day_range(first: datetime, last: datetime) -> str:
    """ "12–20 Nov 2026", "30 Oct – 5 Nov 2026", "28 Dec 2025 – 3 Jan 2026"."""
    if first.date() == last.date():
        return day(first)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{last.day} {last:%b %Y}"
    if first.year == last.year:
        return f"{first.day} {first:%b} – {day(last)}"
    return f"{day(first)} – {day(last)}"


def mg(value: float) -> str:
    """A drug dose in mg: at most one decimal, none when whole ("53.3", "40", "1250"), never exponent
    notation ("1.25e+03")."""
    text = f"{round(value, 1):.1f}"
    return text[:-2] if text.endswith(".0") else text


def number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


@dataclass(frozen=True)
class LabDisplay:
    """How one lab kind's values are shown, bound to the knowledge."""

    knowledge: Knowledge

    def units(self, kind: str) -> Sequence[tuple[str, int]]:
        return self.knowledge.wording.lab_units.get(kind, ())

    def label(self, unit: str) -> str:
        return self.knowledge.wording.unit_labels.get(unit, unit)

    def convert(self, kind: str, canonical: float, unit: str) -> float | None:
        lab = self.knowledge.labs[kind]
        conversion = find_conversion(lab, unit, unit)
        if conversion is None or not conversion.factor:
            return None
        return (canonical - conversion.offset) / conversion.factor

    def reported_unit(self, result: LabResult) -> str | None:
        """Which of the kind's display units the laboratory reported in (same conversion), if any."""
        if result.reported_unit is None:
            return None
        kind = result.kind
        lab = self.knowledge.labs[kind]
        reported = find_conversion(lab, *result.reported_unit)
        if reported is None:
            return None
        for candidate, _ in self.units(kind):
            conversion = find_conversion(lab, candidate, candidate)
            if conversion and (conversion.factor, conversion.offset) == (reported.factor, reported.offset):
                return candidate
        return None

    def ordered_units(self, kind: str, first: str | None) -> list[tuple[str, int]]:
        units = list(self.units(kind))
        units.sort(key=lambda u: u[0] != first)  # stable: the reported unit first, the rest as listed
        return units

    def value(self, kind: str, canonical: float, first: str | None = None, *, both: bool = True) -> str:
        """ "13.1 mmol/L (236 mg/dL)"; with ``both=False`` only the first unit."""
        shown = []
        for unit, decimals in self.ordered_units(kind, first):
            converted = self.convert(kind, canonical, unit)
            if converted is not None:
                shown.append(f"{number(converted, decimals)} {self.label(unit)}")
        if not shown:
            unit = self.knowledge.labs[kind].unit or ""
            return f"{canonical:g} {self.label(unit)}".strip()
        return shown[0] if not both or len(shown) == 1 else f"{shown[0]} ({', '.join(shown[1:])})"

    def value_range(self, kind: str, low: float, high: float, first: str | None) -> str:
        """ "11.4–16.8 mmol/L (205–303 mg/dL)"."""
        shown = []
        for unit, decimals in self.ordered_units(kind, first):
            lo, hi = self.convert(kind, low, unit), self.convert(kind, high, unit)
            if lo is not None and hi is not None:
                shown.append(f"{number(lo, decimals)}–{number(hi, decimals)} {self.label(unit)}")
        if not shown:
            return f"{low:g}–{high:g}"
        return shown[0] if len(shown) == 1 else f"{shown[0]} ({', '.join(shown[1:])})"

    def qualitative(self, result: LabResult, escape=record_text.markdown) -> str:
        """The reported value with the verdict ("46 U/mL, positive", "1:320, positive"), the reported
        value alone when it says the verdict itself ("POSITIVE (immunoprecipitation)"), or the verdict;
        record text escaped with ``escape``."""
        verdict = "positive" if result.positive else "negative" if result.positive is False else ""
        reported = result.reported_value
        if reported and _VERDICT_WORD.match(reported):
            return escape(reported) if reported.strip().lower() not in ("positive", "negative") else verdict
        if reported:
            return f"{escape(reported)}, {verdict}" if verdict else escape(reported)
        return verdict or "result"

    def result(
        self,
        result: LabResult,
        *,
        both: bool = True,
        escape=record_text.markdown,
    ) -> str:
        """The value of one result without its name or date."""
        if result.value is not None and self.knowledge.labs[result.kind].unit:
            return self.value(result.kind, result.value, self.reported_unit(result), both=both)
        return self.qualitative(result, escape)

"""Daily amounts from raw FHIR R4 ``Dosage`` JSON: insulin units per day, glucocorticoid mg per day.

The "extreme insulin requirement" finding compares this number with 200 U/day and 2 U/kg/day, so it is
computed only from structured data and never guessed:

- Dose: ``doseAndRate[].doseQuantity`` in insulin units. When the quantity has a ``code`` it decides
  (``U``, ``[IU]``, ``[iU]``, ``IU``, ``unit(s)``, ``{unit(s)}``, or SNOMED 767525000 "Unit"); with no
  code, the printed ``unit`` string decides. Anything else (mL, mg, U/kg, a ``doseRange`` sliding
  scale, a ``rateQuantity`` infusion) gives ``None``. Of several ``doseQuantity`` entries, the one typed
  ``ordered`` is used; otherwise they must agree.
- Frequency per day: ``timing.repeat`` first — ``frequency`` (1 when absent) per ``period``
  ``periodUnit`` (s, min, h, d, wk; mo = 30 d and a = 365 d), times ``len(dayOfWeek) / 7`` for
  sub-weekly periods; without ``period``, the number of daily ``timeOfDay`` / ``when`` events.
  ``frequencyMax`` and ``periodMax`` are ignored (ranges are not a schedule). Otherwise
  ``timing.code`` (HL7 GTS abbreviations QD, BID, TID, QID, AM, PM, BED, QOD, Q1H–Q12H, WK, MO; UK
  OD/BD/TDS/QDS; also in ``coding[].code``, ``text`` or ``coding[].display``, e.g. "b.i.d.", "twice
  daily", "every 8 hours").
- A dose with no usable timing gives ``None``: once daily is NOT assumed. ``Dosage.text`` alone is not
  parsed.
- Glucocorticoids (``daily_mg``): the same rules with the dose in mg (also g, mcg/µg), or in units of
  presentation (``{tbl}``, ``tablet(s)``, ``TAB``, SNOMED 732936001 "Tablet"; capsules; ``{pill}`` as the
  CDS Hooks Sandbox sends) times the product's strength in mg.
- Several dosage entries (e.g. 40 U in the morning + 30 U at night) are summed; ``sequence`` is
  ignored (entries are taken as concurrent). Entries taken "as needed" (``asNeededBoolean`` true or
  ``asNeededCodeableConcept``) are left out of the sum, so a correction scale never inflates the
  requirement; when every entry is as-needed the result is ``None``. Any other entry that cannot be
  computed makes the whole result ``None`` (a partial sum would understate the dose silently).
- An insulin pump's basal rate (issue 22 A3): a ``doseAndRate[].rateQuantity`` in insulin units per hour
  (``U/h``, ``[IU]/h``, "units/hour"), or a ``rateRatio`` of units over hours, counts as the rate × 24
  a day, whatever the timing; scheduled bolus doses beside it are added as above.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from cds_hooks.fhir.json_access import objects, string

SNOMED = "http://snomed.info/sct"
SNOMED_UNIT = "767525000"  # Unit (qualifier value) — recall

SNOMED_TABLET = "732936001"  # Tablet (unit of presentation) — recall

# Mass units of a glucocorticoid dose, in mg (UCUM codes and printed units, compared lower case).
_MG_PER_UNIT: dict[str, float] = {
    "mg": 1.0, "milligram": 1.0, "milligrams": 1.0, "g": 1000.0, "gram": 1000.0, "grams": 1000.0,
    "ug": 0.001, "mcg": 0.001, "µg": 0.001, "μg": 0.001, "microgram": 0.001, "micrograms": 0.001,
}  # fmt: skip
# Units of presentation: one tablet, capsule or pill holds the product's strength.
_TABLET_WORDS = frozenset(
    {"{tbl}", "{tablet}", "{tablets}", "tbl", "tab", "tabs", "tablet", "tablets"}
    | {"{capsule}", "{capsules}", "cap", "caps", "capsule", "capsules"}
    | {"{pill}", "{pills}", "pill", "pills"}  # {pill}: what the CDS Hooks Sandbox's order form sends
)

_UNIT_WORDS = frozenset(
    {"u", "iu", "[iu]", "unit", "units", "{unit}", "{units}", "international unit", "international units"}
)

# Days per periodUnit (UCUM units of time used by Timing.repeat.periodUnit).
_PERIOD_DAYS: dict[str, float] = {
    "s": 1 / 86400,
    "min": 1 / 1440,
    "h": 1 / 24,
    "d": 1.0,
    "wk": 7.0,
    "mo": 30.0,
    "a": 365.0,
}

# Administrations per day for timing codes and common phrases, compared upper case without spaces,
# dots, hyphens or underscores ("b.i.d." -> "BID", "twice daily" -> "TWICEDAILY").
_TIMING_PER_DAY: dict[str, float] = {
    # HL7 v3 GTS abbreviations (FHIR R4 timing-abbreviation) and common variants
    "QD": 1, "DAILY": 1, "QDAY": 1, "Q24H": 1, "AM": 1, "QAM": 1, "PM": 1, "QPM": 1,
    "BED": 1, "HS": 1, "QHS": 1, "BID": 2, "TID": 3, "QID": 4, "QOD": 0.5,
    "WK": 1 / 7, "QWK": 1 / 7, "WEEKLY": 1 / 7, "MO": 1 / 30,
    # UK abbreviations
    "OD": 1, "ON": 1, "OM": 1, "BD": 2, "TDS": 3, "QDS": 4,
    # phrases
    "ONCEDAILY": 1, "ONCEADAY": 1, "EVERYDAY": 1, "EVERYMORNING": 1, "EVERYEVENING": 1, "EVERYNIGHT": 1,
    "NIGHTLY": 1, "ATBEDTIME": 1, "TWICEDAILY": 2, "TWICEADAY": 2, "THREETIMESDAILY": 3,
    "THREETIMESADAY": 3, "FOURTIMESDAILY": 4, "FOURTIMESADAY": 4, "EVERYOTHERDAY": 0.5,
    "ALTERNATEDAYS": 0.5, "ONCEWEEKLY": 1 / 7, "ONCEAWEEK": 1 / 7,
}  # fmt: skip
_EVERY_N_HOURS = re.compile(r"^(?:Q|EVERY)(\d{1,2})(?:H|HR|HRS|HOUR|HOURS)$")
_KEY_STRIP = re.compile(r"[\s.\-_]")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def is_insulin_unit(quantity: Mapping[str, Any]) -> bool:
    """True when a Quantity is in (international) units of insulin."""
    code = quantity.get("code")
    if isinstance(code, str) and code.strip():
        if quantity.get("system") == SNOMED and code.strip() == SNOMED_UNIT:
            return True
        return code.strip().lower() in _UNIT_WORDS
    unit = quantity.get("unit")
    return isinstance(unit, str) and " ".join(unit.split()).lower() in _UNIT_WORDS


def _dose_quantities(dosage: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The dose quantities to read: the one typed ``ordered`` when there are several, else all."""
    entries = objects(dosage.get("doseAndRate"))
    quantities = [e for e in entries if isinstance(e.get("doseQuantity"), Mapping)]
    if len(quantities) > 1:
        ordered = [e for e in quantities if _is_type(e.get("type"), "ordered")]
        quantities = ordered[:1] if ordered else quantities
    return [e["doseQuantity"] for e in quantities]


def _single_dose(
    dosage: Mapping[str, Any], read: Callable[[Mapping[str, Any]], float | None]
) -> float | None:
    """One amount per administration, or None when a quantity cannot be read or the quantities disagree."""
    quantities = _dose_quantities(dosage)
    if not quantities:
        return None
    doses: set[float] = set()
    for quantity in quantities:
        value = _number(quantity.get("value"))
        amount = read(quantity) if value is not None and value >= 0 else None
        if amount is None:
            return None
        doses.add(amount)
    return doses.pop() if len(doses) == 1 else None


def _insulin_units(quantity: Mapping[str, Any]) -> float | None:
    return _number(quantity.get("value")) if is_insulin_unit(quantity) else None


def _unit_key(quantity: Mapping[str, Any]) -> str | None:
    code = quantity.get("code")
    if isinstance(code, str) and code.strip():
        if quantity.get("system") == SNOMED and code.strip() == SNOMED_TABLET:
            return "tablet"
        return code.strip().lower()
    unit = quantity.get("unit")
    return " ".join(unit.split()).lower() if isinstance(unit, str) else None


def _milligrams(quantity: Mapping[str, Any], strength_mg: float | None) -> float | None:
    """A dose in mg: mass units converted, tablets times the strength (None without a strength)."""
    value = _number(quantity.get("value"))
    key = _unit_key(quantity)
    if value is None or key is None:
        return None
    if key in _MG_PER_UNIT:
        return value * _MG_PER_UNIT[key]
    if key in _TABLET_WORDS and strength_mg is not None:
        return value * strength_mg
    return None


def _is_type(concept: Any, code: str) -> bool:
    if not isinstance(concept, Mapping):
        return False
    return any(c.get("code") == code for c in objects(concept.get("coding")))


def _per_day_from_repeat(repeat: Mapping[str, Any]) -> float | None:
    period = _number(repeat.get("period"))
    period_unit = string(repeat.get("periodUnit"))
    raw_frequency = repeat.get("frequency")
    if period is not None:
        if period <= 0 or period_unit not in _PERIOD_DAYS:
            return None
        frequency = 1.0 if raw_frequency is None else _number(raw_frequency)
        if frequency is None or frequency <= 0:
            return None
        per_day = frequency / (period * _PERIOD_DAYS[period_unit])
        if _PERIOD_DAYS[period_unit] <= 1:
            per_day *= _weekday_fraction(repeat.get("dayOfWeek"))
        return per_day
    if raw_frequency is not None:
        return None  # "twice" per unknown period
    events = repeat.get("timeOfDay") or repeat.get("when")
    if isinstance(events, list):
        distinct = {e for e in events if isinstance(e, str) and e}
        if distinct:
            return len(distinct) * _weekday_fraction(repeat.get("dayOfWeek"))
    return None


def _weekday_fraction(days: Any) -> float:
    if isinstance(days, list):
        distinct = {d for d in days if isinstance(d, str) and d}
        if distinct:
            return min(len(distinct), 7) / 7
    return 1.0


def _per_day_from_words(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    key = _KEY_STRIP.sub("", text.upper())
    if key in _TIMING_PER_DAY:
        return float(_TIMING_PER_DAY[key])
    match = _EVERY_N_HOURS.match(key)
    if match and int(match.group(1)) > 0:
        return 24 / int(match.group(1))
    return None


def _per_day_from_code(code: Any) -> float | None:
    if not isinstance(code, Mapping):
        return None
    codings = objects(code.get("coding"))
    candidates = [c.get("code") for c in codings] + [code.get("text")] + [c.get("display") for c in codings]
    for candidate in candidates:
        per_day = _per_day_from_words(candidate)
        if per_day is not None:
            return per_day
    return None


def administrations_per_day(timing: Any) -> float | None:
    """How many times a day a Timing fires on average; None when it does not say."""
    if not isinstance(timing, Mapping):
        return None
    repeat = timing.get("repeat")
    if isinstance(repeat, Mapping):
        per_day = _per_day_from_repeat(repeat)
        if per_day is not None:
            return per_day
    return _per_day_from_code(timing.get("code"))


_RATE_UNIT = re.compile(r"^(\[?i?u\]?|units?|iu)\s*/\s*(h|hr|hour)$", re.IGNORECASE)
_HOUR = re.compile(r"^(h|hr|hour|hours)$", re.IGNORECASE)


def _insulin_per_hour(entry: Mapping[str, Any]) -> float | None:
    """Units per hour of one ``doseAndRate`` entry given as a rate, else None."""
    rate = entry.get("rateQuantity")
    if isinstance(rate, Mapping):
        value = _number(rate.get("value"))
        unit = rate.get("code") if isinstance(rate.get("code"), str) else rate.get("unit")
        if value is not None and value >= 0 and isinstance(unit, str) and _RATE_UNIT.match(unit.strip()):
            return value
        return None
    ratio = entry.get("rateRatio")
    if isinstance(ratio, Mapping):
        num, den = ratio.get("numerator"), ratio.get("denominator")
        if isinstance(num, Mapping) and isinstance(den, Mapping) and is_insulin_unit(num):
            units, hours = _number(num.get("value")), _number(den.get("value"))
            den_unit = den.get("code") if isinstance(den.get("code"), str) else den.get("unit")
            if units is not None and hours and isinstance(den_unit, str) and _HOUR.match(den_unit.strip()):
                return units / hours
    return None


def basal_rate(dosage: Mapping[str, Any]) -> float | None:
    """An insulin pump's basal rate in units per hour, when the dosage is given as one."""
    rates = [r for e in objects(dosage.get("doseAndRate")) if (r := _insulin_per_hour(e)) is not None]
    return rates[0] if rates else None


def given_as_rate(dosage_list: list[dict[str, Any]] | None) -> bool:
    """Any entry of ``dosage_list`` is an insulin rate: the insulin runs through a pump."""
    return isinstance(dosage_list, list) and any(
        isinstance(d, Mapping) and basal_rate(d) is not None for d in dosage_list
    )


def _as_needed(dosage: Mapping[str, Any]) -> bool:
    return dosage.get("asNeededBoolean") is True or isinstance(dosage.get("asNeededCodeableConcept"), Mapping)


def _daily_total(
    dosage_list: list[dict[str, Any]] | None,
    dose_of: Callable[[Mapping[str, Any]], float | None],
    rate_of: Callable[[Mapping[str, Any]], float | None] | None = None,
) -> float | None:
    """Scheduled amount per day summed over every entry of ``dosage_list`` (see module docstring); an
    entry that ``rate_of`` reads as an hourly rate counts 24 hours of it, whatever its timing."""
    if not isinstance(dosage_list, list):
        return None
    total = 0.0
    counted = 0
    for dosage in dosage_list:
        if not isinstance(dosage, Mapping):
            return None
        if _as_needed(dosage):
            continue
        rate = rate_of(dosage) if rate_of is not None else None
        if rate is not None:
            total += rate * 24
            counted += 1
            continue
        dose = dose_of(dosage)
        per_day = administrations_per_day(dosage.get("timing"))
        if dose is None or per_day is None:
            return None
        total += dose * per_day
        counted += 1
    return total if counted else None


def daily_units(dosage_list: list[dict[str, Any]] | None) -> float | None:
    """Total scheduled insulin units per day, a pump's basal rate included (see module docstring)."""
    return _daily_total(dosage_list, lambda dosage: _single_dose(dosage, _insulin_units), basal_rate)


def daily_mg(dosage_list: list[dict[str, Any]] | None, strength_mg: float | None) -> float | None:
    """Total scheduled mg per day of a glucocorticoid; a dose in tablets needs ``strength_mg``."""
    return _daily_total(
        dosage_list, lambda dosage: _single_dose(dosage, lambda q: _milligrams(q, strength_mg))
    )


def administrations(dosage_list: list[dict[str, Any]] | None) -> float | None:
    """Scheduled administrations per day summed over the entries (as-needed ones left out): 1 for once
    daily, 2 for twice daily or a morning and an evening entry. None when any scheduled entry's timing is
    unknown or nothing is scheduled: the glucocorticoid card then says nothing of the regimen."""
    return _daily_total(dosage_list, lambda _dosage: 1.0)

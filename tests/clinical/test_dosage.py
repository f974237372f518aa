"""Total daily insulin units from FHIR R4 Dosage JSON."""

from __future__ import annotations

from typing import Any

import pytest

from cds_hooks.clinical.facts.dosage import administrations_per_day, daily_units, given_as_rate

GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"


def dose(value: Any, unit: str | None = "U", code: str | None = "U", **extra: Any) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value}
    if unit is not None:
        quantity["unit"] = unit
    if code is not None:
        quantity["code"] = code
        quantity["system"] = "http://unitsofmeasure.org"
    return {"doseAndRate": [{"doseQuantity": quantity}], **extra}


def repeat(**fields: Any) -> dict[str, Any]:
    return {"timing": {"repeat": fields}}


def timing_code(code: str | None = None, text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if code is not None:
        concept["coding"] = [{"system": GTS, "code": code}]
    if text is not None:
        concept["text"] = text
    return {"timing": {"code": concept}}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"frequency": 1, "period": 1, "periodUnit": "d"}, 30.0),
        ({"frequency": 2, "period": 1, "periodUnit": "d"}, 60.0),
        ({"frequency": 3, "period": 1, "periodUnit": "d"}, 90.0),
        ({"period": 1, "periodUnit": "d"}, 30.0),  # frequency defaults to 1 per period
        ({"frequency": 1, "period": 8, "periodUnit": "h"}, 90.0),
        ({"frequency": 1, "period": 12, "periodUnit": "h"}, 60.0),
        ({"frequency": 1, "period": 2, "periodUnit": "d"}, 15.0),
        ({"frequency": 1, "period": 1, "periodUnit": "wk"}, 30 / 7),
        ({"frequency": 2, "period": 1, "periodUnit": "d", "frequencyMax": 4}, 60.0),  # frequencyMax ignored
        ({"frequency": 1, "period": 1, "periodUnit": "d", "dayOfWeek": ["mon", "wed", "fri"]}, 30 * 3 / 7),
        ({"when": ["ACM", "ACD", "ACV"]}, 90.0),  # three daily events, no period
        ({"timeOfDay": ["08:00:00", "20:00:00"]}, 60.0),
    ],
)
def test_repeat_frequency_and_period(fields: dict[str, Any], expected: float) -> None:
    assert daily_units([{**dose(30), **repeat(**fields)}]) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("code", "per_day"),
    [
        ("QD", 1), ("BID", 2), ("TID", 3), ("QID", 4), ("Q4H", 6), ("Q6H", 4), ("Q8H", 3), ("Q12H", 2),
        ("QOD", 0.5), ("AM", 1), ("PM", 1), ("BED", 1), ("Q1H", 24), ("Q2H", 12), ("Q3H", 8), ("WK", 1 / 7),
        ("OD", 1), ("BD", 2), ("TDS", 3), ("QDS", 4), ("QHS", 1),
    ],
)  # fmt: skip
def test_each_timing_code(code: str, per_day: float) -> None:
    assert daily_units([{**dose(10), **timing_code(code=code)}]) == pytest.approx(10 * per_day)


@pytest.mark.parametrize(
    ("text", "per_day"),
    [("b.i.d.", 2), ("twice daily", 2), ("Once a day", 1), ("t.i.d.", 3), ("every 8 hours", 3), ("q6h", 4)],
)
def test_timing_code_as_text(text: str, per_day: float) -> None:
    assert daily_units([{**dose(10), **timing_code(text=text)}]) == pytest.approx(10 * per_day)


def test_timing_code_in_display_only() -> None:
    timing = {"timing": {"code": {"coding": [{"system": "urn:local", "code": "X7", "display": "BID"}]}}}
    assert daily_units([{**dose(12), **timing}]) == pytest.approx(24.0)


def test_repeat_wins_over_code() -> None:
    timing = {"timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}, "code": {"text": "BID"}}}
    assert daily_units([{**dose(10), **timing}]) == pytest.approx(30.0)


def test_multiple_dosages_are_summed() -> None:
    morning = {**dose(40), **repeat(frequency=1, period=1, periodUnit="d", when=["MORN"])}
    evening = {**dose(30), **timing_code(code="PM")}
    assert daily_units([morning, evening]) == pytest.approx(70.0)
    prandial = {**dose(12), **timing_code(code="TID")}
    assert daily_units([morning, evening, prandial]) == pytest.approx(106.0)


@pytest.mark.parametrize(
    ("unit", "code"),
    [
        ("U", "U"),
        ("units", None),
        ("unit", None),
        ("IU", None),
        ("[IU]", "[IU]"),
        ("Units", "[iU]"),
        (None, "U"),
    ],
)
def test_accepted_insulin_units(unit: str | None, code: str | None) -> None:
    assert daily_units([{**dose(20, unit=unit, code=code), **timing_code(code="BID")}]) == pytest.approx(40.0)


def test_snomed_unit_code_is_accepted() -> None:
    dosage = {
        "doseAndRate": [{"doseQuantity": {"value": 8, "unit": "unit", "system": "http://snomed.info/sct",
                                          "code": "767525000"}}],
        **timing_code(code="TID"),
    }  # fmt: skip
    assert daily_units([dosage]) == pytest.approx(24.0)


@pytest.mark.parametrize(
    ("unit", "code"),
    [("mL", "mL"), ("mg", "mg"), ("U/kg", "U/kg"), ("units", "mL"), (None, None), ("puffs", None)],
)
def test_non_unit_dose_gives_none(unit: str | None, code: str | None) -> None:
    assert daily_units([{**dose(20, unit=unit, code=code), **timing_code(code="BID")}]) is None


def test_non_unit_entry_makes_the_sum_none() -> None:
    good = {**dose(40), **timing_code(code="QD")}
    bad = {**dose(0.5, unit="mL", code="mL"), **timing_code(code="QD")}
    assert daily_units([good, bad]) is None


def test_no_timing_gives_none() -> None:
    assert daily_units([dose(40)]) is None
    assert daily_units([{**dose(40), "timing": {}}]) is None
    assert daily_units([{**dose(40), "timing": {"repeat": {"count": 1}}}]) is None
    assert daily_units([{**dose(40), "timing": {"repeat": {"frequency": 2}}}]) is None  # per what?
    assert daily_units([{**dose(40), "timing": {"code": {"text": "with meals as directed"}}}]) is None
    assert daily_units([{**dose(40), "text": "40 units at night"}]) is None


def test_dose_range_gives_none() -> None:
    scale = {"low": {"value": 2, "unit": "U"}, "high": {"value": 10, "unit": "U"}}
    sliding = {"doseAndRate": [{"doseRange": scale}], **timing_code(code="TID")}
    assert daily_units([sliding]) is None


def test_a_pump_basal_rate_counts_24_hours_plus_scheduled_boluses() -> None:
    """Issue 22 A3: a basal rate in U/h is the rate × 24 a day, whatever the timing; boluses add."""
    basal = {"doseAndRate": [{"rateQuantity": {"value": 2, "unit": "U/h"}}], **timing_code(code="QD")}
    assert daily_units([basal]) == pytest.approx(48.0)
    ratio = {
        "doseAndRate": [
            {"rateRatio": {"numerator": {"value": 3, "unit": "U"}, "denominator": {"value": 2, "unit": "h"}}}
        ]
    }
    assert daily_units([ratio]) == pytest.approx(36.0)
    bolus = {**dose(6), **timing_code(code="TID")}
    assert daily_units([basal, bolus]) == pytest.approx(66.0)
    assert given_as_rate([basal, bolus]) and not given_as_rate([bolus])
    per_minute = {"doseAndRate": [{"rateQuantity": {"value": 2, "unit": "mL/min"}}]}
    assert daily_units([per_minute]) is None


def test_as_needed_entries_are_left_out() -> None:
    basal = {**dose(30), **timing_code(code="QD")}
    correction = {**dose(4), **timing_code(code="TID"), "asNeededBoolean": True}
    assert daily_units([basal, correction]) == pytest.approx(30.0)
    assert daily_units([correction]) is None


def test_ordered_dose_preferred_over_calculated() -> None:
    dosage = {
        "doseAndRate": [
            {"type": {"coding": [{"code": "calculated"}]}, "doseQuantity": {"value": 33.3, "unit": "U"}},
            {"type": {"coding": [{"code": "ordered"}]}, "doseQuantity": {"value": 32, "unit": "U"}},
        ],
        **timing_code(code="QD"),
    }
    assert daily_units([dosage]) == pytest.approx(32.0)


def test_empty_or_malformed_input_gives_none() -> None:
    assert daily_units(None) is None
    assert daily_units([]) is None
    assert daily_units(["BID"]) is None  # type: ignore[list-item]
    assert daily_units([{**dose("40"), **timing_code(code="QD")}]) is None
    assert daily_units([{**dose(40), **repeat(frequency=1, period=0, periodUnit="d")}]) is None
    assert daily_units([{**dose(40), **repeat(frequency=1, period=1, periodUnit="fortnight")}]) is None


def test_administrations_per_day() -> None:
    assert administrations_per_day({"code": {"coding": [{"code": "Q8H"}]}}) == pytest.approx(3.0)
    assert administrations_per_day({"repeat": {"frequency": 4, "period": 1, "periodUnit": "d"}}) == 4.0
    assert administrations_per_day(None) is None


# --- glucocorticoid mg/day (issue 14 item 9) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "code", "strength", "expected"),
    [
        ("mg", "mg", None, 20.0),  # 10 mg twice daily
        ("g", "g", None, 20000.0),
        ("mcg", "ug", None, 0.02),
        ("tablet", "{tbl}", 5.0, 100.0),  # 10 tablets × 5 mg, twice daily
        ("tablets", None, 2.5, 50.0),  # printed unit only
        ("tablet", "{tbl}", None, None),  # tablets without a strength: unknown, never guessed
        (None, "{pill}", 20.0, 400.0),  # the CDS Hooks Sandbox's unit: UCUM annotation, no printed unit
        ("capsules", None, 4.0, 80.0),
        (None, "{pill}", None, None),
        ("mL", "mL", 5.0, None),  # a liquid volume is not a mass
    ],
)
def test_daily_mg_from_mass_or_tablets_times_strength(unit, code, strength, expected):
    from cds_hooks.clinical.facts.dosage import daily_mg

    assert daily_mg([dose(10, unit, code, **timing_code("BID"))], strength) == expected


def test_daily_mg_sums_entries_and_skips_as_needed():
    from cds_hooks.clinical.facts.dosage import daily_mg

    morning = dose(10, "mg", "mg", **timing_code("QD"))
    noon = dose(5, "mg", "mg", **timing_code("QD"))
    rescue = dose(20, "mg", "mg", asNeededBoolean=True, **timing_code("QD"))
    assert daily_mg([morning, noon, rescue], None) == 15.0
    assert daily_mg([morning, {"text": "5 mg at noon"}], None) is None  # a partial sum would understate

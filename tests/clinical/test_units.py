"""Unit conversions from knowledge/labs.toml: each accepted unit, and None (never a guess) otherwise."""

from __future__ import annotations

import pytest

from cds_hooks.clinical.knowledge import Knowledge, LabKind, load_knowledge
from cds_hooks.clinical.units import normalise_unit, to_canonical


@pytest.fixture(scope="module")
def k() -> Knowledge:
    return load_knowledge(env={})


def lab(k: Knowledge, name: str) -> LabKind:
    return k.labs[name]


@pytest.mark.parametrize(
    "unit",
    ["u[IU]/mL", "m[iU]/L", "uIU/mL", "µIU/mL", "μIU/mL", "mcIU/mL", "uU/mL", "µU/mL", "mU/L", "mIU/L"],
)
def test_insulin_unit_spellings_are_identity(k: Knowledge, unit: str) -> None:
    assert to_canonical(lab(k, "insulin"), 42.5, unit, None) == pytest.approx(42.5)
    assert to_canonical(lab(k, "insulin"), 42.5, None, unit) == pytest.approx(42.5)


@pytest.mark.parametrize(
    "unit", ["UIU/ML", "uiu/ml", "µiu/mL", "microIU/mL", "u[iU]/mL", "mIu/l", " mU / L "]
)
def test_insulin_units_after_normalisation(k: Knowledge, unit: str) -> None:
    assert to_canonical(lab(k, "insulin"), 10, unit, None) == pytest.approx(10.0)


def test_insulin_pmol_per_litre_uses_6_00(k: Knowledge) -> None:
    insulin = lab(k, "insulin")
    assert to_canonical(insulin, 300, "pmol/L", "pmol/L") == pytest.approx(50.0)
    assert to_canonical(insulin, 600, "pmol/L", None) == pytest.approx(100.0)
    assert to_canonical(insulin, 6.0, "pmol/l", None) == pytest.approx(1.0)
    assert to_canonical(insulin, 694.5, "pmol/L", None) != pytest.approx(100.0)  # not the legacy 6.945


def test_glucose_mmol_per_litre_times_18_016(k: Knowledge) -> None:
    for name in ("glucose", "glucose_fasting", "ogtt_2h"):
        assert to_canonical(lab(k, name), 10.0, "mmol/L", "mmol/L") == pytest.approx(180.16)
        assert to_canonical(lab(k, name), 7.0, "mmol/l", None) == pytest.approx(126.112)
        assert to_canonical(lab(k, name), 126, "mg/dL", "mg/dL") == pytest.approx(126.0)
        assert to_canonical(lab(k, name), 99, "mg/dl", None) == pytest.approx(99.0)


def test_hba1c_ifcc_master_equation(k: Knowledge) -> None:
    hba1c = lab(k, "hba1c")
    assert to_canonical(hba1c, 48, "mmol/mol", "mmol/mol") == pytest.approx(6.54304)
    assert to_canonical(hba1c, 48, "mmol/mol", None) == pytest.approx(6.5, abs=0.05)
    assert to_canonical(hba1c, 53, None, "mmol/mol") == pytest.approx(7.0, abs=0.05)
    assert to_canonical(hba1c, 6.8, "%", "%") == pytest.approx(6.8)
    assert to_canonical(hba1c, 6.8, "%{HbA1c}", None) == pytest.approx(6.8)  # UCUM annotation ignored


def test_c_peptide_conversions(k: Knowledge) -> None:
    cpep = lab(k, "c_peptide")
    assert to_canonical(cpep, 1.5, "ng/mL", None) == pytest.approx(1.5)
    assert to_canonical(cpep, 0.331, "nmol/L", None) == pytest.approx(1.0)
    assert to_canonical(cpep, 331, "pmol/L", None) == pytest.approx(1.0)
    assert to_canonical(cpep, 0.662, None, "nmol/L") == pytest.approx(2.0)


def test_weight_conversions(k: Knowledge) -> None:
    weight = lab(k, "body_weight")
    assert to_canonical(weight, 80, "kg", "kg") == pytest.approx(80.0)
    assert to_canonical(weight, 176.37, "lb", None) == pytest.approx(80.0, abs=0.001)
    assert to_canonical(weight, 100, "[lb_av]", "[lb_av]") == pytest.approx(45.359237)
    assert to_canonical(weight, 100, "lbs", None) == pytest.approx(45.359237)
    assert to_canonical(weight, 80000, "g", None) == pytest.approx(80.0)


def test_code_wins_over_printed_unit(k: Knowledge) -> None:
    assert to_canonical(lab(k, "glucose"), 10, "mg/dL", "mmol/L") == pytest.approx(180.16)
    # An unknown code falls back to a known printed unit.
    assert to_canonical(lab(k, "glucose"), 10, "mmol/L", "MMOLPL") == pytest.approx(180.16)


@pytest.mark.parametrize(
    ("kind", "unit", "code"),
    [
        ("insulin", "micU/mL", None),  # not a spelling we know: never guessed
        ("insulin", "ng/mL", None),  # mass units: recognised code 3695-4 but no conversion configured
        ("insulin", "pmol/mL", None),
        ("insulin", None, None),
        ("insulin", "", "  "),
        ("glucose", "mg/L", None),
        ("glucose", "umol/L", None),
        ("hba1c", "mmol/L", None),
        ("hba1c", None, None),
        ("body_weight", "stone", None),
        ("c_peptide", "ug/L", None),
    ],
)
def test_unknown_unit_gives_none(k: Knowledge, kind: str, unit: str | None, code: str | None) -> None:
    assert to_canonical(lab(k, kind), 12.0, unit, code) is None


def test_qualitative_kinds_and_bad_values_give_none(k: Knowledge) -> None:
    assert to_canonical(lab(k, "ana"), 160, "{titer}", None) is None
    assert to_canonical(lab(k, "insulin_antibody"), 0.5, "U/mL", None) is None
    assert to_canonical(lab(k, "insulin"), float("nan"), "uIU/mL", None) is None
    assert to_canonical(lab(k, "insulin"), True, "uIU/mL", None) is None  # type: ignore[arg-type]
    assert to_canonical(lab(k, "insulin"), "12", "uIU/mL", None) is None  # type: ignore[arg-type]


def test_normalise_unit() -> None:
    assert normalise_unit("µIU/mL") == "uiu/ml"  # U+00B5 micro sign
    assert normalise_unit("μIU/mL") == "uiu/ml"  # U+03BC Greek mu
    assert normalise_unit("mcIU/mL") == "uiu/ml"
    assert normalise_unit("u[IU]/mL") == "uiu/ml"
    assert normalise_unit(" mmol / L ") == "mmol/l"
    assert normalise_unit("%{HbA1c}") == "%"
    assert normalise_unit("[lb_av]") == "lb_av"


def test_the_code_wins_over_the_unit_also_when_it_needs_trimming(k: Knowledge) -> None:
    """The exact-match fast path keeps the documented order: code before printed unit, each trimmed."""
    insulin = lab(k, "insulin")
    assert to_canonical(insulin, 600, "uIU/mL", " pmol/L ") == pytest.approx(100.0)
    assert to_canonical(insulin, 600, "uIU/mL", "pmol/L") == pytest.approx(100.0)
    assert to_canonical(insulin, 600, " pmol/L", "no such unit") == pytest.approx(100.0)

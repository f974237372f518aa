"""The example patients: one function per clinical situation, registered with the rule ids it must fire.

Each function writes the situation (animal insulin, antibodies, autoimmune disease, glucocorticoids,
non-immune causes...) into a :class:`~scripts.examples.chart.Chart`; the background history is merged
afterwards (:mod:`scripts.examples.background`). Numbered in the order they are defined here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cds_hooks.fhir import builders as fhir
from cds_hooks.fhir.builders import ATC, RXNORM, SNOMED

from .chart import INHALED, ORAL, Chart, concept, insulin_dose, tablet_dose

# A hospital's own lab catalogue: the insulin-receptor antibody has no LOINC term (reference §1d).
HOSPITAL_LAB = "http://lab.riverside-hospital.example.org/fhir/CodeSystem/lab-tests"
PROJECT_LOCAL = "https://immune-ir-cds.example.org/fhir/CodeSystem/local-tests"

# Rule ids (card.source.topic.code) — issue 3.
A = "animal-insulin-switch"
W = "insulin-antibody-workup"
B = "type-b-insulin-resistance"
T = "ataxia-telangiectasia-ir"
G = "glucocorticoid-hyperglycemia"
S = "insulin-autoimmune-syndrome"  # issue 14
RULE_IDS = (A, W, B, T, G, S)

# Medications reused by several patients.
PORK_NEUTRAL = concept(
    "Hypurin Porcine Neutral 100 units/mL injection",
    (ATC, "A10AB03", "insulin (pork)"),
)
PORK_ISOPHANE = concept(
    "Hypurin Porcine Isophane 100 units/mL injection",
    (ATC, "A10AC03", "insulin (pork)"),
)
HUMAN_GLARGINE = concept(
    "insulin glargine 100 UNT/ML Injectable Solution [Lantus]",
    (RXNORM, "274783", "insulin glargine"),
    (ATC, "A10AE04", "insulin glargine"),
)
HUMAN_LISPRO = concept("insulin lispro 100 UNT/ML [Humalog]", (RXNORM, "86009", "insulin lispro"))
HUMAN_ASPART = concept(
    "insulin aspart 100 UNT/ML [NovoLog]",
    (RXNORM, "51428", "insulin aspart"),
    (ATC, "A10AB05", "insulin aspart"),
)
HUMAN_REGULAR_U500 = concept(
    "Humulin R U-500 (insulin regular, human) 500 units/mL KwikPen",
    (RXNORM, "253182", "insulin, regular, human"),
    (ATC, "A10AB01", "insulin (human)"),
)
HUMAN_NPH = concept("Humulin N (insulin isophane, human) 100 units/mL", (ATC, "A10AC01", "insulin (human)"))
METFORMIN = concept(
    "metformin hydrochloride 1000 MG Oral Tablet",
    (RXNORM, "861004", "metformin hydrochloride 1000 MG Oral Tablet"),
)
PREDNISONE_20 = concept(
    "predniSONE 20 MG Oral Tablet",
    (RXNORM, "312617", "predniSONE 20 MG Oral Tablet"),
    (ATC, "H02AB07", "prednisone"),
)
PREDNISOLONE_5 = concept(
    "prednisoLONE 5 MG Oral Tablet",
    (RXNORM, "312615", "prednisoLONE 5 MG Oral Tablet"),
    (ATC, "H02AB06", "prednisolone"),
)
HYDROXYCHLOROQUINE = concept(
    "hydroxychloroquine sulfate 200 MG Oral Tablet",
    (RXNORM, "979092", "hydroxychloroquine sulfate 200 MG Oral Tablet"),
)
LEVOTHYROXINE = concept(
    "levothyroxine sodium 0.1 MG Oral Tablet", (RXNORM, "966247", "levothyroxine sodium 0.1 MG Oral Tablet")
)

POSITIVE = concept("Positive", (SNOMED, "10828004", "Positive"))
NEGATIVE = concept("Negative", (SNOMED, "260385009", "Negative"))


def t1dm(chart: Chart, years: int) -> None:
    chart.condition(
        "Type 1 diabetes mellitus without complications",
        icd="E10.9",
        snomed="46635009",
        onset_days_ago=years * 365 + 40,
    )


def receptor_antibody(
    chart: Chart,
    days_ago: float,
    *,
    status: str = "final",
    string: str | None = None,
    concept_value: dict[str, Any] | None = None,
    interpretation: str | None = None,
    project_code: bool = False,
) -> dict[str, Any]:
    """An insulin-receptor antibody result: local code + text only (no LOINC term exists)."""
    system, code = (PROJECT_LOCAL, "INSR-AB") if project_code else (HOSPITAL_LAB, "INSRAB")
    return chart.lab(
        code,
        "Insulin receptor antibody",
        days_ago,
        system=system,
        text="Insulin receptor antibody",
        string=string,
        concept=concept_value,
        status=status,
        interpretation=interpretation,
        when="dateTime" if status != "registered" else "none",
        kind="lab",
    )


# ------------------------------------------------------------------------------------- the examples


@dataclass(frozen=True)
class Spec:
    slug: str
    description: str
    expected: tuple[str, ...]
    profile: str  # carebundle profile for the background
    sex: str  # F / M
    age: int
    build: Callable[[Chart], None]
    own_glycaemia: bool = True  # drop the background's recent glucose/HbA1c: the situation sets its own
    recent_panels: tuple[str, ...] | None = None  # carebundle panels at the latest visit (None: all)


EXAMPLES: list[Spec] = []


def example(
    slug: str,
    description: str,
    expected: Iterable[str],
    *,
    profile: str,
    sex: str,
    age: int,
    own_glycaemia: bool = True,
    recent_panels: tuple[str, ...] | None = None,
) -> Callable[[Callable[[Chart], None]], Callable[[Chart], None]]:
    def register(build: Callable[[Chart], None]) -> Callable[[Chart], None]:
        EXAMPLES.append(
            Spec(
                slug,
                description,
                tuple(sorted(expected)),
                profile,
                sex,
                age,
                build,
                own_glycaemia,
                recent_panels,
            )
        )
        return build

    return register


# --- 1. Animal insulin ----------------------------------------------------------------------------


@example(
    "porcine-insulin-stable",
    "Type 1 diabetes since the 1980s, still on porcine insulin (MedicationStatement, ATC A10AB03/A10AC03), "
    "stable glucose",
    [A],
    profile="hypertension",
    sex="F",
    age=61,
)
def _porcine_stable(c: Chart) -> None:
    t1dm(c, 40)
    c.statement(PORK_NEUTRAL, dosage=[insulin_dose(8, code="TID")], start_days_ago=9000)
    c.statement(PORK_ISOPHANE, dosage=[insulin_dose(14, code="BID")], start_days_ago=9000)
    c.weight(69.5, 12)
    c.stable_diary(100, 185)
    c.hba1c(7.4, 30)


@example(
    "bovine-insulin-medication-reference",
    "Bovine lente insulin prescribed by MedicationRequest whose medicationReference points at a Medication "
    "resource (only on the server), glucose in mmol/L",
    [A],
    profile="hypertension",
    sex="M",
    age=72,
)
def _bovine_reference(c: Chart) -> None:
    t1dm(c, 50)
    med = c.medication(
        "Hypurin Bovine Lente 100 units/mL suspension for injection",
        [fhir.coding(ATC, "A10AC02", "insulin (beef)")],
        form="Suspension for injection",
    )
    c.request(
        None,
        reference=f"Medication/{med['id']}",
        dosage=[insulin_dose(18, frequency=2, period=1, period_unit="d")],
        authored_days_ago=45,
    )
    c.weight(81.0, 20)
    c.stable_diary(6.0, 10.5, unit="mmol/L")
    c.hba1c(7.1, 45)


@example(
    "porcine-insulin-labile-glucose",
    "Porcine insulin by brand text only (Pork Actrapid / Pork Insulatard), erratic glucose: 48 and 342 mg/dL "
    "within 5 days",
    [W],
    profile="healthy",
    sex="F",
    age=46,
)
def _porcine_labile(c: Chart) -> None:
    t1dm(c, 30)
    c.statement(
        concept("Pork Actrapid 100 IU/ml"), dosage=[insulin_dose(10, code="TID")], start_days_ago=7000
    )
    c.statement(
        concept("Pork Insulatard 100 IU/ml"), dosage=[insulin_dose(16, code="QD")], start_days_ago=7000
    )
    c.weight(62.0, 9)
    values = [142, 188, 96, 342, 210, 158, 48, 131, 265, 118, 90, 204]
    c.glucose_diary(values, start_days_ago=14)
    c.hba1c(8.6, 40)


@example(
    "bovine-insulin-antibodies-positive",
    "Bovine insulin with a positive insulin antibody (LOINC 8072-1, above the reference range, flagged H) "
    "but stable glucose and dose: antibodies alone are not resistance, switch card",
    [A],
    profile="hypertension",
    sex="M",
    age=67,
)
def _bovine_antibodies(c: Chart) -> None:
    t1dm(c, 45)
    c.statement(
        concept("Hypurin Bovine Neutral 100 units/mL", (ATC, "A10AB02", "insulin (beef)")),
        dosage=[insulin_dose(14, code="TID")],
        start_days_ago=12000,
    )
    c.weight(88.0, 15)
    c.stable_diary(120, 230)
    c.hba1c(8.9, 25)
    c.lab(
        "8072-1",
        "Insulin Ab [Units/volume] in Serum",
        60,
        quantity=(46.0, "U/mL", "U/mL"),
        interpretation="H",
        high=(0.4, "U/mL", "U/mL"),
    )


@example(
    "past-porcine-now-human-extreme-dose",
    "Porcine insulin until 2004 (MedicationStatement completed), now glargine + aspart 245 U/day (2.7 "
    "U/kg/day) with a positive insulin antibody (valueString): animal exposure too long ago, but human "
    "insulin can raise antibodies too: consider antibodies to human insulin (no switch)",
    ["insulin-antibody-workup"],
    profile="type2_diabetes",
    sex="F",
    age=63,
)
def _past_porcine_extreme(c: Chart) -> None:
    c.statement(
        concept("Iletin II Pork Regular insulin", (ATC, "A10AB03", "insulin (pork)")),
        status="completed",
        start="1991-03-01",
        end="2004-06-30",
    )
    c.request(HUMAN_GLARGINE, dosage=[insulin_dose(110, code="QD")], authored_days_ago=35)
    c.request(
        HUMAN_ASPART, dosage=[insulin_dose(45, frequency=3, period=1, period_unit="d")], authored_days_ago=35
    )
    c.weight(92.0, 10)
    c.stable_diary(140, 240)
    c.hba1c(9.4, 35)
    c.lab("56546-5", "Insulin Ab [Units/volume] in Serum", 50, string="Positive", text="Insulin Antibody")


@example(
    "porcine-contained-medication",
    "Pork Mixtard 30 ordered through a MedicationRequest with a contained Medication (#pork-mix)",
    [A],
    profile="hypertension",
    sex="M",
    age=80,
)
def _porcine_contained(c: Chart) -> None:
    t1dm(c, 55)
    pork_mix = fhir.concept(fhir.coding(ATC, "A10AD03", "insulin (pork)"), text="Pork Mixtard 30 100 IU/ml")
    contained = fhir.medication("pork-mix", code=pork_mix, status=None)
    c.request(
        None,
        reference="#pork-mix",
        contained=[contained],
        dosage=[insulin_dose(22, when=["ACM"]), insulin_dose(14, when=["ACV"])],
        authored_days_ago=70,
    )
    c.weight(74.0, 30)
    c.stable_diary(110, 210)
    c.hba1c(7.6, 60)


@example(
    "past-bovine-labile-cv",
    "Bovine insulin stopped in 2009 (MedicationStatement stopped), now human insulin; glucose CV 48 % over "
    "12 readings in 6 days (never < 70 or > 250): exposure too long ago, no card",
    [],
    profile="healthy",
    sex="F",
    age=57,
)
def _past_bovine_cv(c: Chart) -> None:
    t1dm(c, 35)
    c.statement(
        concept("Hypurin Bovine Isophane", (ATC, "A10AC02", "insulin (beef)")),
        status="stopped",
        start="1996-01-15",
        end="2009-09-01",
    )
    c.statement(HUMAN_NPH, dosage=[insulin_dose(18, code="BID")], start="2009-09-01")
    c.statement(
        concept("Humulin R (insulin regular, human)", (ATC, "A10AB01", "insulin (human)")),
        dosage=[insulin_dose(6, code="TID")],
        start="2009-09-01",
    )
    c.weight(64.0, 8)
    c.glucose_diary([80, 240, 90, 230, 85, 245, 95, 220, 78, 235, 88, 210], start_days_ago=12)
    c.hba1c(8.1, 20)


# --- 2. Type B insulin resistance ------------------------------------------------------------------


@example(
    "type-b-sle-receptor-antibody-positive",
    "SLE with a positive insulin-receptor antibody (hospital local code + text, valueString), fasting "
    "insulin 1450 pmol/L, positive ANA",
    [B],
    profile="healthy",
    sex="F",
    age=34,
)
def _type_b_sle(c: Chart) -> None:
    c.condition("Systemic lupus erythematosus", snomed="55464009", onset_days_ago=2600)
    c.condition("Acanthosis nigricans", icd="L83", snomed="72129000", onset_days_ago=150)
    c.request(HYDROXYCHLOROQUINE, dosage=[tablet_dose("200 mg twice daily", mg=200, code="BID")])
    c.request(
        METFORMIN, dosage=[tablet_dose("1000 mg twice daily", mg=1000, code="BID")], authored_days_ago=80
    )
    c.lab(
        "59179-2",
        "Insulin [Moles/volume] in Serum or Plasma --fasting",
        40,
        quantity=(1450, "pmol/L", "pmol/L"),
        interpretation="HH",
    )
    c.glucose_mgdl(276, 40, code="2345-7")
    c.hba1c(9.8, 40)
    c.lab("8061-4", "Nuclear Ab [Presence] in Serum", 200, concept=POSITIVE)
    receptor_antibody(c, 25, string="Positive")


@example(
    "type-b-sjogren-receptor-antibody-positive",
    "Sjögren's syndrome (ICD-10 M35.00) with a positive insulin-receptor antibody (coded value) on "
    "U-500 human insulin 450 U/day",
    [B],
    profile="hypertension",
    sex="F",
    age=49,
)
def _type_b_sjogren(c: Chart) -> None:
    c.condition("Sjogren syndrome, unspecified", icd="M35.00", onset_days_ago=3100)
    c.condition("Diabetes mellitus due to underlying condition", icd="E08.9", onset_days_ago=420)
    c.request(HUMAN_REGULAR_U500, dosage=[insulin_dose(150, code="TID")], authored_days_ago=30)
    c.weight(58.0, 14)
    c.stable_diary(160, 245)
    c.hba1c(10.4, 28)
    receptor_antibody(c, 90, concept_value=POSITIVE, interpretation="POS", project_code=True)


@example(
    "type-b-thyroiditis-receptor-antibody-pending",
    "Hashimoto's thyroiditis, fasting insulin 212 µIU/mL off insulin, insulin-receptor antibody sent "
    "out and still pending, no feature that obesity does not explain (no BMI, triglycerides, SHBG or "
    "adiponectin on record, no fasting hypoglycaemia): no card",
    [],
    profile="healthy",
    sex="F",
    age=41,
)
def _type_b_thyroiditis(c: Chart) -> None:
    c.condition("Hashimoto thyroiditis", icd="E06.3", snomed="21983002", onset_days_ago=2200)
    c.request(LEVOTHYROXINE, dosage=[tablet_dose("100 mcg every morning", mg=0.1)])
    c.lab(
        "27873-9",
        "Insulin [Units/volume] in Serum or Plasma --fasting",
        21,
        quantity=(212, "µIU/mL", "u[IU]/mL"),
        high=(25, "µIU/mL", "u[IU]/mL"),
    )
    c.glucose_mgdl(238, 21, code="1558-6")
    c.hba1c(8.9, 21)
    receptor_antibody(c, 10, status="registered")


@example(
    "type-b-sle-fasting-hypoglycaemia",
    "SLE in relapse with fasting hypoglycaemia (2.8 mmol/L) and insulin 72 mIU/L off insulin (raised, "
    "not markedly raised: no measured severe insulin resistance); receptor antibody result preliminary:"
    " no card",
    [],
    profile="healthy",
    sex="F",
    age=38,
)
def _type_b_hypo(c: Chart) -> None:
    c.condition(
        "Systemic lupus erythematosus with organ involvement",
        icd="M32.19",
        status="relapse",
        onset_days_ago=3000,
    )
    c.request(HYDROXYCHLOROQUINE, dosage=[tablet_dose("200 mg twice daily", mg=200, code="BID")])
    c.glucose_mmol(2.8, 18, code="14771-0", hour=6)
    c.glucose_mmol(3.4, 11, code="14771-0", hour=6)
    c.lab(
        "20448-7",
        "Insulin [Units/volume] in Serum or Plasma",
        18,
        quantity=(72, "mIU/L", "m[iU]/L"),
        when="period",
        hour=6,
    )
    c.hba1c(5.9, 18)
    receptor_antibody(c, 6, status="preliminary", string="Pending - sent to reference laboratory")


@example(
    "type-b-graves-ana-extreme-dose",
    "Graves' disease, ANA 1:320 (valueString titre), on U-500 human insulin 300 U/day: suspected type B",
    [B],
    profile="type2_diabetes",
    sex="F",
    age=52,
)
def _type_b_graves(c: Chart) -> None:
    c.condition("Graves disease", snomed="353295004", onset_days_ago=1800)
    c.request(HUMAN_REGULAR_U500, dosage=[insulin_dose(100, code="TID")], authored_days_ago=25)
    c.weight(71.0, 12)
    c.stable_diary(150, 240)
    c.hba1c(10.2, 30)
    c.lab(
        "5048-4",
        "Nuclear Ab [Titer] in Serum by Immunofluorescence",
        120,
        string="1:320",
        text="ANA titre (HEp-2 IFA)",
    )


@example(
    "sle-high-insulin-receptor-antibody-negative",
    "SLE with insulin 140 µIU/mL off insulin, but a negative insulin-receptor antibody 4 months ago: no card",
    [],
    profile="healthy",
    sex="F",
    age=45,
)
def _sle_negative(c: Chart) -> None:
    c.condition("Lupus erythematosus, systemic", icd="M32.9", onset_days_ago=2400)
    c.lab(
        "20448-7",
        "Insulin [Units/volume] in Serum or Plasma",
        30,
        quantity=(140, "uIU/mL", "u[IU]/mL"),
    )
    c.glucose_mgdl(131, 30, code="2345-7")
    c.hba1c(6.1, 30)
    receptor_antibody(c, 120, concept_value=NEGATIVE, interpretation="NEG")


@example(
    "rheumatoid-insulin-autoantibodies-no-animal",
    "Rheumatoid arthritis, never on insulin: positive insulin autoantibodies (60463-7 nmol/L), insulin "
    "320 µIU/mL and fasting glucose 52 mg/dL: insulin autoimmune syndrome",
    [S],
    profile="hypertension",
    sex="M",
    age=59,
)
def _ra_autoantibodies(c: Chart) -> None:
    c.condition("Rheumatoid arthritis, unspecified", icd="M06.9", onset_days_ago=3500)
    c.request(
        concept("methotrexate 2.5 MG Oral Tablet", (RXNORM, "105586", "methotrexate 2.5 MG Oral Tablet")),
        dosage=[tablet_dose("15 mg once weekly", mg=15, code="WK")],
    )
    c.lab(
        "60463-7",
        "Insulin Ab [Moles/volume] in Serum",
        33,
        quantity=(0.35, "nmol/L", "nmol/L"),
        high=(0.02, "nmol/L", "nmol/L"),
    )
    c.lab("20448-7", "Insulin [Units/volume] in Serum or Plasma", 33, quantity=(320, "uIU/mL", "u[IU]/mL"))
    c.glucose_mgdl(52, 33, code="1558-6", hour=6)
    c.hba1c(5.6, 33)


@example(
    "sle-marked-insulin-outside-window",
    "SLE with insulin 180 µIU/mL seven months ago (outside the 90-day window) and a normal recent "
    "glucose: no card",
    [],
    profile="healthy",
    sex="F",
    age=50,
)
def _sle_old_insulin(c: Chart) -> None:
    c.condition("Systemic lupus erythematosus", snomed="55464009", icd="M32.9", onset_days_ago=4000)
    c.lab("20448-7", "Insulin [Units/volume] in Serum or Plasma", 210, quantity=(180, "uIU/mL", "u[IU]/mL"))
    c.glucose_mgdl(98, 20, code="2345-7")
    c.hba1c(5.5, 20)
    c.lab("8061-4", "Nuclear Ab [Presence] in Serum", 150, concept=POSITIVE)


# --- 3. Ataxia-telangiectasia ------------------------------------------------------------------------


def ataxia(c: Chart, **kw: Any) -> None:
    c.condition("Ataxia-telangiectasia syndrome", **kw)
    c.request(
        concept("immune globulin, human 10 % (IVIG)", (ATC, "J06BA02", "immunoglobulins, normal human")),
        dosage=[{"text": "0.4 g/kg every 4 weeks"}],
    )


@example(
    "ataxia-telangiectasia-hyperglycaemia",
    "Ataxia-telangiectasia (ICD-10 G11.3) with HbA1c 7.2 % and glucose 221 mg/dL",
    [T],
    profile="healthy",
    sex="M",
    age=21,
)
def _at_hyper(c: Chart) -> None:
    ataxia(c, icd="G11.3", onset_days_ago=6000)
    c.hba1c(7.2, 26)
    c.glucose_mgdl(221, 26, code="2345-7")


@example(
    "ataxia-telangiectasia-normoglycaemic",
    "Ataxia-telangiectasia (SNOMED) with normal glucose and HbA1c this year: no card",
    [],
    profile="healthy",
    sex="F",
    age=19,
)
def _at_normal(c: Chart) -> None:
    ataxia(c, snomed="68504005", onset_days_ago=5500)
    c.hba1c(5.3, 60)
    c.glucose_mgdl(88, 60, code="2345-7")


@example(
    "ataxia-telangiectasia-unscreened",
    "Louis-Bar syndrome (text only) with no glucose or HbA1c in the last year: screening card",
    [T],
    profile="healthy",
    sex="M",
    age=23,
    recent_panels=("cbc",),
)
def _at_unscreened(c: Chart) -> None:
    ataxia(c, text="Louis-Bar syndrome (ataxia telangiectasia)", onset_days_ago=7000)
    c.hba1c(5.4, 500)


@example(
    "ataxia-telangiectasia-insulin-elevated",
    "Ataxia-telangiectasia with normal glucose but insulin 64 µIU/mL",
    [T],
    profile="healthy",
    sex="F",
    age=20,
)
def _at_insulin(c: Chart) -> None:
    ataxia(c, icd="G11.3", snomed="68504005", onset_days_ago=5800)
    c.lab("20448-7", "Insulin [Units/volume] in Serum or Plasma", 44, quantity=(64, "uIU/mL", "u[IU]/mL"))
    c.glucose_mgdl(94, 44, code="1558-6")
    c.hba1c(5.6, 44)


# --- 4. Glucocorticoids ---------------------------------------------------------------------------------


@example(
    "prednisone-type-2-diabetes",
    "Type 2 diabetes on prednisone 20 mg for polymyalgia rheumatica, glucose 268 mg/dL",
    [G],
    profile="type2_diabetes",
    sex="M",
    age=68,
)
def _prednisone_t2dm(c: Chart) -> None:
    c.condition("Polymyalgia rheumatica", icd="M35.3", onset_days_ago=75)
    c.request(PREDNISONE_20, dosage=[tablet_dose("20 mg once daily", mg=20)], authored_days_ago=70)
    c.glucose_mgdl(268, 14, code="2345-7")
    c.hba1c(8.3, 14)


@example(
    "dexamethasone-hba1c-ifcc",
    "Dexamethasone 4 mg twice daily (MedicationStatement, text only) and HbA1c 61 mmol/mol, no diabetes "
    "diagnosis",
    [G],
    profile="hypertension",
    sex="F",
    age=59,
)
def _dexamethasone(c: Chart) -> None:
    c.condition("Meningioma", icd="D32.9", onset_days_ago=120)
    c.statement(
        concept("Dexamethasone 4 mg tablets"),
        dosage=[tablet_dose("4 mg twice daily", mg=4, code="BID")],
        start_days_ago=100,
    )
    c.hba1c_ifcc(61, 22)
    c.glucose_mmol(9.8, 22, code="14749-6")


@example(
    "inhaled-budesonide-type-2-diabetes",
    "Type 2 diabetes with asthma on an inhaled budesonide/formoterol inhaler: inhaled steroids do not "
    "count, no card",
    [],
    profile="type2_diabetes",
    sex="F",
    age=55,
)
def _inhaled(c: Chart) -> None:
    c.condition("Asthma, unspecified, uncomplicated", icd="J45.909", onset_days_ago=9000)
    c.request(
        concept(
            "budesonide 160 MCG / formoterol fumarate 4.5 MCG Metered Dose Inhaler",
            (ATC, "R03AK07", "formoterol and budesonide"),
        ),
        dosage=[{"text": "2 puffs twice daily", "route": INHALED}],
    )
    c.request(
        concept("albuterol 90 MCG/ACTUAT Metered Dose Inhaler", (RXNORM, "745679", "albuterol inhaler"))
    )
    c.glucose_mgdl(212, 19, code="2345-7")
    c.hba1c(7.8, 19)


@example(
    "addison-hydrocortisone-normoglycaemic",
    "Addison's disease on hydrocortisone replacement with normal glucose and HbA1c: no card",
    [],
    profile="healthy",
    sex="F",
    age=47,
)
def _addison(c: Chart) -> None:
    c.condition("Primary adrenocortical insufficiency", icd="E27.1", snomed="363732003", onset_days_ago=3300)
    c.request(
        concept("hydrocortisone 10 MG Oral Tablet", (RXNORM, "197787", "hydrocortisone 10 MG Oral Tablet")),
        dosage=[tablet_dose("10 mg on waking, 5 mg at noon, 5 mg at 4 pm", mg=10, code="TID")],
    )
    c.request(concept("fludrocortisone acetate 0.1 MG Oral Tablet", (ATC, "H02AA02", "fludrocortisone")))
    c.glucose_mgdl(86, 50, code="2345-7")
    c.hba1c(5.2, 50)


@example(
    "porcine-insulin-on-prednisolone",
    "Porcine insulin plus prednisolone for giant cell arteritis with glucose 16.8 mmol/L: two cards",
    [A, G],
    profile="hypertension",
    sex="M",
    age=74,
)
def _porcine_prednisolone(c: Chart) -> None:
    t1dm(c, 48)
    c.condition("Giant cell arteritis", icd="M31.6", onset_days_ago=60)
    c.statement(PORK_NEUTRAL, dosage=[insulin_dose(10, code="TID")], start_days_ago=11000)
    c.statement(PORK_ISOPHANE, dosage=[insulin_dose(20, code="BID")], start_days_ago=11000)
    c.request(PREDNISOLONE_5, dosage=[tablet_dose("40 mg once daily", mg=40)], authored_days_ago=58)
    c.weight(79.0, 16)
    c.stable_diary(8.5, 13.5, unit="mmol/L")
    c.glucose_mmol(16.8, 9, code="14749-6", hour=11)
    c.hba1c(8.4, 20)


@example(
    "type-b-sle-on-prednisone",
    "SLE with a positive insulin-receptor antibody being treated with prednisone 40 mg, HbA1c 9.1 %: "
    "type B card and steroid card",
    [B, G],
    profile="healthy",
    sex="F",
    age=36,
)
def _type_b_prednisone(c: Chart) -> None:
    c.condition("Systemic lupus erythematosus", snomed="55464009", onset_days_ago=1500)
    c.condition("Type B insulin resistance", icd="E88.818", onset_days_ago=50)
    c.request(PREDNISONE_20, dosage=[tablet_dose("40 mg once daily", mg=40)], authored_days_ago=45)
    c.request(HYDROXYCHLOROQUINE, dosage=[tablet_dose("200 mg twice daily", mg=200, code="BID")])
    c.hba1c(9.1, 20)
    c.glucose_mgdl(245, 20, code="2345-7")
    receptor_antibody(c, 55, string="POSITIVE (immunoprecipitation)", interpretation="A")


@example(
    "ataxia-telangiectasia-ild-prednisolone",
    "Ataxia-telangiectasia with interstitial lung disease on prednisolone, glucose 232 mg/dL: A-T card and "
    "steroid card",
    [G, T],
    profile="healthy",
    sex="M",
    age=24,
)
def _at_prednisolone(c: Chart) -> None:
    ataxia(c, icd="G11.3", onset_days_ago=7500)
    c.condition("Interstitial pulmonary disease", icd="J84.9", onset_days_ago=200)
    c.statement(PREDNISOLONE_5, dosage=[tablet_dose("20 mg once daily", mg=20)], start_days_ago=180)
    c.glucose_mgdl(232, 15, code="2345-7")
    c.hba1c(6.6, 15)


# --- 5. Non-immune causes and controls ----------------------------------------------------------------


@example(
    "pcos-obesity-normal-insulin",
    "Polycystic ovary syndrome with obesity on metformin, insulin 22 µIU/mL: no card",
    [],
    profile="healthy",
    sex="F",
    age=29,
)
def _pcos(c: Chart) -> None:
    c.condition("Polycystic ovarian syndrome", icd="E28.2", onset_days_ago=1500)
    c.condition("Obesity, unspecified", icd="E66.9", onset_days_ago=1500)
    c.request(METFORMIN, dosage=[tablet_dose("1000 mg twice daily", mg=1000, code="BID")])
    c.lab("20448-7", "Insulin [Units/volume] in Serum or Plasma", 40, quantity=(22, "uIU/mL", "u[IU]/mL"))
    c.glucose_mgdl(101, 40, code="1558-6")
    c.hba1c(5.7, 40)


@example(
    "pcos-hyperinsulinaemia",
    "PCOS (SNOMED) with insulin 480 pmol/L (80 µIU/mL) and no autoimmune disease: no card",
    [],
    profile="healthy",
    sex="F",
    age=33,
)
def _pcos_high(c: Chart) -> None:
    c.condition("Polycystic ovary syndrome", snomed="69878008", onset_days_ago=900)
    c.lab(
        "14796-7",
        "Insulin [Moles/volume] in Serum or Plasma",
        28,
        quantity=(480, "pmol/L", "pmol/L"),
        interpretation="H",
    )
    c.glucose_mgdl(109, 28, code="1558-6")
    c.hba1c(5.9, 28)


@example(
    "obesity-metabolic-syndrome-marked-insulin",
    "Morbid obesity and metabolic syndrome with insulin 135 µIU/mL off insulin, hypothyroidism (not "
    "autoimmune): no card",
    [],
    profile="hypertension",
    sex="M",
    age=51,
)
def _obesity(c: Chart) -> None:
    c.condition("Morbid (severe) obesity due to excess calories", icd="E66.01", onset_days_ago=3000)
    c.condition("Metabolic syndrome", icd="E88.81", onset_days_ago=1200)
    c.condition("Hypothyroidism, unspecified", icd="E03.9", onset_days_ago=2000)
    c.lab("20448-7", "Insulin [Units/volume] in Serum or Plasma", 36, quantity=(135, "uIU/mL", "u[IU]/mL"))
    c.glucose_mgdl(118, 36, code="1558-6")
    c.hba1c(6.2, 36)
    c.weight(None, 36, lb=318)


@example(
    "gestational-diabetes-human-insulin",
    "Pregnant at 30 weeks with gestational diabetes on human NPH and lispro: no card",
    [],
    profile="healthy",
    sex="F",
    age=32,
)
def _gdm(c: Chart) -> None:
    c.condition("Pregnant state, incidental", icd="Z33.1", snomed="77386006", onset_days_ago=210)
    c.condition(
        "Gestational diabetes mellitus in pregnancy, insulin controlled", icd="O24.414", onset_days_ago=60
    )
    c.request(HUMAN_NPH, dosage=[insulin_dose(12, code="BID")], authored_days_ago=50)
    c.request(HUMAN_LISPRO, dosage=[insulin_dose(6, code="TID")], authored_days_ago=50)
    c.weight(78.0, 7)
    c.stable_diary(80, 150)
    c.hba1c(5.9, 30)


@example(
    "ckd-type-2-diabetes-human-insulin",
    "Chronic kidney disease stage 3 and type 2 diabetes on insulin glargine 30 U daily, glucose in mmol/L "
    "and HbA1c in mmol/mol: no card",
    [],
    profile="ckd_stage3",
    sex="M",
    age=69,
)
def _ckd(c: Chart) -> None:
    c.condition(
        "Type 2 diabetes mellitus with diabetic chronic kidney disease", icd="E11.22", onset_days_ago=5000
    )
    c.request(HUMAN_GLARGINE, dosage=[insulin_dose(30, code="QD")], authored_days_ago=40)
    c.weight(84.0, 11)
    c.stable_diary(6.5, 12.0, unit="mmol/L")
    c.hba1c_ifcc(58, 40)


@example(
    "type-2-diabetes-basal-bolus",
    "Type 2 diabetes on glargine + lispro 120 U/day at 240 lb (1.1 U/kg/day): no card",
    [],
    profile="type2_diabetes",
    sex="M",
    age=58,
)
def _basal_bolus(c: Chart) -> None:
    c.request(HUMAN_GLARGINE, dosage=[insulin_dose(60, code="QD")], authored_days_ago=30)
    c.request(HUMAN_LISPRO, dosage=[insulin_dose(20, code="TID")], authored_days_ago=30)
    c.weight(None, 5, lb=240)
    c.stable_diary(120, 220)
    c.hba1c(8.0, 30)


@example(
    "human-actrapid-insulatard-text-only",
    "Type 1 diabetes on Actrapid and Insulatard (human insulins, text only): no card",
    [],
    profile="healthy",
    sex="F",
    age=63,
)
def _human_text(c: Chart) -> None:
    t1dm(c, 38)
    c.statement(concept("Actrapid 100 IU/ml (human soluble insulin)"), dosage=[insulin_dose(7, code="TID")])
    c.statement(concept("Insulatard FlexPen 100 IU/ml"), dosage=[insulin_dose(18, code="QD")])
    c.weight(66.0, 20)
    c.stable_diary(90, 200)
    c.hba1c(7.2, 50)


@example(
    "porcine-entered-in-error-human-current",
    "A porcine insulin MedicationStatement entered in error; Humalog and Lantus current: no card",
    [],
    profile="hypertension",
    sex="M",
    age=45,
)
def _entered_in_error(c: Chart) -> None:
    t1dm(c, 20)
    c.statement(PORK_NEUTRAL, status="entered-in-error", start_days_ago=40)
    c.request(HUMAN_LISPRO, dosage=[insulin_dose(8, code="TID")], authored_days_ago=40)
    c.request(HUMAN_GLARGINE, dosage=[insulin_dose(24, code="QD")], authored_days_ago=40)
    c.weight(83.0, 40)
    c.stable_diary(90, 210)
    c.hba1c(7.0, 40)


@example(
    "healthy-control-female",
    "Healthy control: routine vitals and panels only",
    [],
    profile="healthy",
    sex="F",
    age=42,
    own_glycaemia=False,
)
def _healthy_f(c: Chart) -> None:
    pass


@example(
    "healthy-control-male",
    "Healthy control: routine vitals and panels only",
    [],
    profile="healthy",
    sex="M",
    age=36,
    own_glycaemia=False,
)
def _healthy_m(c: Chart) -> None:
    pass


@example(
    "hypertension-control",
    "Hypertension on antihypertensives (background record only), no diabetes: no card",
    [],
    profile="hypertension",
    sex="F",
    age=64,
    own_glycaemia=False,
)
def _hypertension(c: Chart) -> None:
    pass


@example(
    "type-2-diabetes-oral-agents-control",
    "Type 2 diabetes on metformin, no insulin, no steroids: no card",
    [],
    profile="type2_diabetes",
    sex="F",
    age=60,
    own_glycaemia=False,
)
def _t2dm_control(c: Chart) -> None:
    c.request(
        METFORMIN, dosage=[tablet_dose("1000 mg twice daily", mg=1000, code="BID")], authored_days_ago=90
    )


# --- 6. Issue 14 / 16 situations: what a clinician already knows, handles or has recorded twice -------


@example(
    "insulin-autoimmune-syndrome-alpha-lipoic-acid",
    "Never on insulin, taking alpha-lipoic acid: positive insulin antibody, fasting glucose 2.6 mmol/L and "
    "insulin 410 µIU/mL: insulin autoimmune syndrome",
    [S],
    profile="healthy",
    sex="F",
    age=58,
)
def _ias_alpha_lipoic(c: Chart) -> None:
    c.condition("Polyneuropathy, unspecified", icd="G62.9", onset_days_ago=700)
    c.statement(
        concept("Alpha-lipoic acid 600 mg capsule", (ATC, "A16AX01", "thioctic acid")),
        dosage=[tablet_dose("600 mg once daily", mg=600)],
        start_days_ago=120,
    )
    c.lab(
        "8072-1",
        "Insulin Ab [Units/volume] in Serum",
        20,
        quantity=(38.0, "U/mL", "U/mL"),
        interpretation="H",
        high=(0.4, "U/mL", "U/mL"),
    )
    c.lab("20448-7", "Insulin [Units/volume] in Serum or Plasma", 20, quantity=(410, "uIU/mL", "u[IU]/mL"))
    c.glucose_mmol(2.6, 20, code="14771-0", hour=6)
    c.hba1c(5.4, 20)


@example(
    "addison-hydrocortisone-replacement-raised-hba1c",
    "Addison's disease on hydrocortisone 10 mg twice daily (5 mg/day prednisolone equivalent) with HbA1c "
    "6.9 %: replacement, not excess: no card",
    [],
    profile="healthy",
    sex="M",
    age=53,
)
def _addison_replacement(c: Chart) -> None:
    c.condition("Primary adrenocortical insufficiency", icd="E27.1", snomed="363732003", onset_days_ago=4000)
    c.request(
        concept("hydrocortisone 10 MG Oral Tablet", (ATC, "H02AB09", "hydrocortisone")),
        dosage=[tablet_dose("10 mg twice daily", mg=10, code="BID")],
        authored_days_ago=120,
    )
    c.glucose_mgdl(131, 30, code="2345-7")
    c.hba1c(6.9, 30)


@example(
    "stale-prednisone-order-repeated-problem-list",
    "A prednisone order authored in 2002 never closed ('active'), glucose 212 mg/dL, type 2 diabetes and "
    "obesity recorded at every visit: stale order, no card",
    [],
    profile="type2_diabetes",
    sex="F",
    age=71,
)
def _stale_prednisone(c: Chart) -> None:
    c.request(PREDNISONE_20, dosage=[tablet_dose("20 mg once daily", mg=20)], authored_days_ago=9000)
    for years in range(8):
        c.condition("Body mass index 30+ - obesity", snomed="414916001", onset_days_ago=400 + years * 365)
    c.glucose_mgdl(212, 25, code="2345-7")
    c.hba1c(7.6, 25)


@example(
    "type-2-obese-hashimoto-high-dose",
    "Obese type 2 diabetes with Hashimoto's on 210 U/day (2.1 U/kg/day) and triglycerides 128 mg/dL: "
    "normal triglycerides despite severe resistance is a feature obesity does not explain, suspected "
    "type B",
    ["type-b-insulin-resistance"],
    profile="type2_diabetes",
    sex="F",
    age=56,
)
def _obese_hashimoto(c: Chart) -> None:
    c.condition("Hashimoto thyroiditis", icd="E06.3", snomed="21983002", onset_days_ago=3000)
    c.condition("Obesity, unspecified", icd="E66.9", onset_days_ago=3000)
    c.request(HUMAN_GLARGINE, dosage=[insulin_dose(90, code="QD")], authored_days_ago=30)
    c.request(HUMAN_LISPRO, dosage=[insulin_dose(40, code="TID")], authored_days_ago=30)
    c.weight(100.0, 12)
    c.stable_diary(140, 230)
    c.hba1c(8.6, 30)


@example(
    "ataxia-telangiectasia-screening-ordered",
    "Ataxia-telangiectasia without a glucose or HbA1c in the last year, a glucose test ordered 5 days ago "
    "(ServiceRequest active): screening already under way, no card",
    [],
    profile="healthy",
    sex="F",
    age=22,
    recent_panels=("cbc",),
)
def _at_ordered(c: Chart) -> None:
    ataxia(c, icd="G11.3", onset_days_ago=6500)
    c.service_request("2345-7", "Glucose [Mass/volume] in Serum or Plasma", 5)


@example(
    "addison-prednisolone-tablets-above-replacement",
    "Addison's disease on prednisolone 5 mg tablets, 2 tablets daily (10 mg/day, above the 7.5 mg "
    "replacement dose), HbA1c 7.4 %: steroid card",
    [G],
    profile="healthy",
    sex="F",
    age=49,
)
def _addison_prednisolone(c: Chart) -> None:
    c.condition("Addison's disease", snomed="363732003", onset_days_ago=2500)
    c.request(
        PREDNISOLONE_5,
        dosage=[
            fhir.dosage(
                "2 tablets once daily",
                timing=fhir.timing(code="QD"),
                route=ORAL,
                dose=fhir.quantity(2, "tablet", "{tbl}"),
            )
        ],
        authored_days_ago=90,
    )
    c.glucose_mgdl(205, 21, code="2345-7")
    c.hba1c(7.4, 21)


@example(
    "type-b-hashimoto-acanthosis-extreme-dose",
    "Hashimoto's thyroiditis with acanthosis nigricans on U-500 human insulin 270 U/day (2.5 U/kg/day) "
    "at 108 kg: acanthosis does not count without a BMI below 30, triglycerides 134 mg/dL do: suspected"
    " type B",
    ["type-b-insulin-resistance"],
    profile="healthy",
    sex="F",
    age=44,
)
def _type_b_acanthosis(c: Chart) -> None:
    c.condition("Hashimoto thyroiditis", icd="E06.3", snomed="21983002", onset_days_ago=2600)
    c.condition("Acanthosis nigricans", icd="L83", snomed="72129000", onset_days_ago=200)
    c.request(HUMAN_REGULAR_U500, dosage=[insulin_dose(90, code="TID")], authored_days_ago=40)
    c.weight(108.0, 10)
    c.stable_diary(170, 260)
    c.hba1c(9.9, 30)

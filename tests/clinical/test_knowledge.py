"""The knowledge data loads, validates, and matches codes, filters and text as documented."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cds_hooks.clinical.knowledge import (
    ATC,
    ICD10CM,
    LOCAL_TESTS_SYSTEM,
    LOINC,
    REQUIRED_VALUESETS,
    RXNORM,
    SNOMED,
    Knowledge,
    KnowledgeError,
    default_knowledge_dir,
    load_knowledge,
)

LAB_VALUESETS = {
    "glucose", "glucose-fasting", "ogtt-2h", "hba1c", "insulin", "c-peptide", "insulin-antibody",
    "insulin-receptor-antibody", "ana", "body-weight", "bmi",
}  # fmt: skip
MEDICATION_VALUESETS = {
    "insulin-any", "insulin-animal", "insulin-human-or-analogue", "insulin-rapid-short",
    "insulin-intermediate", "insulin-premixed", "insulin-long", "glucocorticoid-systemic",
    "route-non-systemic", "glucocorticoid-non-systemic-form", "insulin-autoimmune-triggers",
    "insulin-secretagogues",  # issue 22 D11
}  # fmt: skip
CONDITION_VALUESETS = {
    "diabetes", "type-2-diabetes", "sle", "sjogren", "rheumatoid-arthritis", "autoimmune-thyroid", "addison",
    "autoimmune-polyglandular", "ataxia-telangiectasia", "pcos", "metabolic-syndrome", "hyperlipidaemia",
    "acromegaly", "cushing", "ckd-uraemia", "obesity", "pregnancy", "type-b-insulin-resistance",
    "acanthosis-nigricans", "adrenal-insufficiency",
}  # fmt: skip


@pytest.fixture(scope="module")
def k() -> Knowledge:
    return load_knowledge(env={})


@pytest.fixture
def knowledge_copy(tmp_path: Path) -> Path:
    root = tmp_path / "knowledge"
    shutil.copytree(default_knowledge_dir(), root)
    return root


# ---------------------------------------------------------------------------------------------- loading


def test_default_dir_is_the_repository_knowledge_folder() -> None:
    root = default_knowledge_dir()
    assert (root / "labs.toml").is_file()
    assert (root / "valuesets" / "insulin.json").is_file()


def test_every_valueset_id_exists_with_its_canonical_url(k: Knowledge) -> None:
    expected = LAB_VALUESETS | MEDICATION_VALUESETS | CONDITION_VALUESETS
    assert expected == set(REQUIRED_VALUESETS)
    assert expected <= set(k.valuesets)
    for vs_id in expected:
        vs = k.valuesets[vs_id]
        assert vs.id == vs_id
        assert vs.url == f"https://immune-ir-cds.example.org/fhir/ValueSet/{vs_id}"
        assert vs.title and vs.description


def test_valueset_files_are_fhir_r4_valuesets() -> None:
    from fhir.resources.R4B.valueset import ValueSet as FhirValueSet

    for path in sorted((default_knowledge_dir() / "valuesets").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        model = FhirValueSet.model_validate(data)
        assert model.status == "draft", path.name


def test_every_concept_and_filter_carries_a_source_with_a_status() -> None:
    statuses = ("verified", "recall", "unverified", "inference", "design")
    for path in sorted((default_knowledge_dir() / "valuesets").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for include in data["compose"]["include"]:
            for element in [*include.get("concept", []), *include.get("filter", [])]:
                (source,) = [e["valueString"] for e in element["extension"] if e["url"].endswith("/source")]
                assert source.startswith(statuses), (path.name, source)


def test_labs_are_loaded_with_windows_units_and_valuesets(k: Knowledge) -> None:
    assert set(k.labs) == {
        "glucose", "glucose_fasting", "ogtt_2h", "hba1c", "insulin", "c_peptide", "insulin_antibody",
        "insulin_receptor_antibody", "ana", "body_weight", "bmi", "egfr", "pregnancy_status", "cgm_glucose",
        # issue 22 D10 (type B features) and D11 (the hypoglycaemia workup)
        "triglycerides", "shbg", "adiponectin", "proinsulin", "beta_hydroxybutyrate", "sulfonylurea_screen",
    }  # fmt: skip
    windows = {name: lab.lookback_days for name, lab in k.labs.items()}
    assert windows == {
        "glucose": 90, "glucose_fasting": 90, "ogtt_2h": 90, "hba1c": 180, "insulin": 90, "c_peptide": 90,
        "insulin_antibody": 365, "insulin_receptor_antibody": 365, "ana": 365, "body_weight": 180, "bmi": 365,
        "egfr": 365, "pregnancy_status": 280, "cgm_glucose": 30,
        "triglycerides": 365, "shbg": 365, "adiponectin": 365, "proinsulin": 90, "beta_hydroxybutyrate": 90,
        "sulfonylurea_screen": 90,
    }  # fmt: skip
    assert k.labs["insulin"].unit == "uIU/mL"
    assert k.labs["glucose"].unit == "mg/dL"
    assert k.labs["hba1c"].unit == "%"
    assert k.labs["c_peptide"].unit == "ng/mL"
    assert k.labs["body_weight"].unit == "kg"
    assert k.labs["ana"].unit is None and not k.labs["ana"].units
    assert k.labs["insulin"].valueset is k.valuesets["insulin"]
    assert k.labs["insulin"].units["pmol/L"].factor == pytest.approx(1 / 6.0)
    assert "Vølund" in k.labs["insulin"].units["pmol/L"].source


def test_thresholds_have_values_units_and_sources(k: Knowledge) -> None:
    assert k.threshold("insulin_elevated") == 50
    assert k.threshold("insulin_marked") == 100
    assert k.threshold("glucose_hyper_random") == 200
    assert k.threshold("glucose_hyper_fasting") == 126
    assert k.threshold("hba1c_hyper") == 6.5
    assert k.threshold("labile_cv") == 36
    assert k.threshold("tdd_extreme_per_kg") == 2
    assert k.threshold("ana_titre_positive") == 80
    assert k.thresholds["tdd_extreme"].unit == "U/day"
    assert "Danne" in k.thresholds["labile_cv"].source
    for threshold in k.thresholds.values():
        assert threshold.source and threshold.description and threshold.unit
        assert threshold.overridden_by is None
    with pytest.raises(KeyError, match="no_such"):
        k.threshold("no_such")


def test_threshold_environment_override() -> None:
    k = load_knowledge(
        env={"CDS_HOOKS_THRESHOLD_INSULIN_ELEVATED": " 60 ", "CDS_HOOKS_THRESHOLD_HBA1C_HYPER": "7"}
    )
    assert k.threshold("insulin_elevated") == 60.0
    assert k.thresholds["insulin_elevated"].default == 50
    assert k.thresholds["insulin_elevated"].overridden_by == "CDS_HOOKS_THRESHOLD_INSULIN_ELEVATED"
    assert k.threshold("hba1c_hyper") == 7.0
    assert k.threshold("insulin_marked") == 100


@pytest.mark.parametrize("value", ["sixty", "", "nan", "inf"])
def test_non_numeric_threshold_override_is_an_error(value: str) -> None:
    with pytest.raises(KnowledgeError, match="CDS_HOOKS_THRESHOLD_INSULIN_ELEVATED"):
        load_knowledge(env={"CDS_HOOKS_THRESHOLD_INSULIN_ELEVATED": value})


def test_override_of_an_unknown_threshold_is_an_error() -> None:
    with pytest.raises(KnowledgeError, match="insulin_elevatd"):
        load_knowledge(env={"CDS_HOOKS_THRESHOLD_INSULIN_ELEVATD": "60"})


def test_knowledge_dir_from_environment(knowledge_copy: Path) -> None:
    k = load_knowledge(env={"CDS_HOOKS_KNOWLEDGE_DIR": str(knowledge_copy)})
    assert k.root == knowledge_copy


def test_condition_groups_and_other_causes(k: Knowledge) -> None:
    assert k.autoimmune_groups == {
        "sle", "sjogren", "rheumatoid-arthritis", "autoimmune-thyroid", "addison", "autoimmune-polyglandular",
    }  # fmt: skip
    by_valueset = {c.valueset for c in k.other_causes if c.valueset}
    # Issue 22 D12: hyperlipidaemia is an association (the seed: insulin resistance "may be observed"),
    # not a cause.
    assert by_valueset == {
        "type-2-diabetes", "pcos", "metabolic-syndrome", "acromegaly", "cushing", "ckd-uraemia", "obesity",
        "pregnancy",
    }  # fmt: skip
    (steroids,) = [c for c in k.other_causes if c.medication]
    assert steroids.medication == "glucocorticoid-systemic" and steroids.valueset is None


def test_workup_tests_referral_and_category(k: Knowledge) -> None:
    codes = {kind: (t.code.system, t.code.code) for kind, t in k.workup.items()}
    assert codes == {
        "glucose": (LOINC, "2345-7"),
        "hba1c": (LOINC, "4548-4"),
        "insulin": (LOINC, "20448-7"),
        "c_peptide": (LOINC, "1986-9"),
        "insulin_antibody": (LOINC, "111329-9"),
        "insulin_receptor_antibody": (LOCAL_TESTS_SYSTEM, "INSR-AB"),
        "ana": (LOINC, "8061-4"),
        # Issue 22 D11: the hypoglycaemia workup (Cryer et al., JCEM 2009;94:709-28).
        "proinsulin": (LOINC, "10451-3"),
        "beta_hydroxybutyrate": (LOINC, "29512-1"),
        "sulfonylurea_screen": (LOCAL_TESTS_SYSTEM, "HYPOG-SCREEN"),
    }
    assert k.workup["insulin_antibody"].text == "Insulin antibodies"
    assert (
        k.workup["insulin_receptor_antibody"].text
        == "Insulin receptor antibody (send-out, specialist laboratory)"
    )
    assert k.workup["glucose"].satisfied_by == ("glucose", "glucose_fasting")
    assert k.referral.text == "Referral to endocrinology"
    assert k.referral.category.as_fhir() == {
        "system": SNOMED,
        "code": "3457005",
        "display": "Patient referral",
    }
    assert (k.referral.performer_type.code, k.referral.performer_type.display) == (
        "61894003",
        "Endocrinologist",
    )
    assert (k.lab_category.system, k.lab_category.code) == (SNOMED, "108252007")


# ---------------------------------------------------------------------------------------------- matching


def test_exact_codes_and_codes_for_prefetch(k: Knowledge) -> None:
    insulin = k.valuesets["insulin"]
    assert insulin.matches_coding(LOINC, "20448-7")
    assert insulin.matches_coding(LOINC, " 14796-7 ")
    assert not insulin.matches_coding(LOINC, "20448-9")  # a wrong code seen in public repos
    assert not insulin.matches_coding("http://loinc.org/", "20448-7")  # systems match exactly
    assert not insulin.matches_coding(None, "20448-7")
    assert not insulin.matches_coding(LOINC, None)
    assert insulin.codes(LOINC)[:2] == ["20448-7", "27873-9"]
    assert insulin.codes(SNOMED) == []
    assert "1558-6" in k.valuesets["glucose"].codes(LOINC)  # any glucose includes fasting-coded glucose
    assert "1518-0" not in k.valuesets["glucose"].codes(LOINC)  # but not the OGTT
    assert "62388-4" not in k.valuesets["hba1c"].codes(LOINC)  # JDS % is not NGSP %


@pytest.mark.parametrize(
    ("valueset", "code", "expected"),
    [
        ("sle", "M32", True),
        ("sle", "M32.9", True),
        ("sle", "M329", True),
        ("sle", "m32.14", True),
        ("sle", "M3214", True),
        ("sle", "M33.9", False),
        ("sle", "M320X", True),
        ("metabolic-syndrome", "E88.810", True),
        ("metabolic-syndrome", "E88810", True),
        ("metabolic-syndrome", "E88.81", True),
        ("metabolic-syndrome", "E88.811", False),
        ("type-b-insulin-resistance", "E88818", True),
        ("diabetes", "E08.65", True),
        ("diabetes", "E1165", True),
        ("diabetes", "E13.9", True),
        ("diabetes", "E14.9", False),
        ("diabetes", "E07.9", False),
        ("obesity", "E66.01", True),
        ("obesity", "E66.3", False),
        ("obesity", "Z68.41", True),
        ("obesity", "Z6835", True),
        ("obesity", "Z68.29", False),
        ("pregnancy", "O24.410", True),
        ("pregnancy", "O9A.111", True),
        ("pregnancy", "Z3A.20", True),
        ("pregnancy", "Z33.1", True),
        ("hyperlipidaemia", "E78.5", True),
        ("hyperlipidaemia", "E7801", True),
        ("hyperlipidaemia", "E78.6", False),
        ("ckd-uraemia", "N18.6", True),
        ("ckd-uraemia", "N19", True),
        ("ckd-uraemia", "R392", True),
        ("sjogren", "M35.00", True),
        ("sjogren", "M35.1", False),
        ("rheumatoid-arthritis", "M06.9", True),
        ("rheumatoid-arthritis", "M05.79", True),
        ("autoimmune-thyroid", "E06.3", True),
        ("autoimmune-thyroid", "E063", True),
        ("autoimmune-thyroid", "E05.00", True),
        ("autoimmune-thyroid", "E05.20", False),
        ("autoimmune-polyglandular", "E31.0", True),
        ("addison", "E27.1", True),
        ("ataxia-telangiectasia", "G11.3", True),
        ("cushing", "E24.2", True),
    ],
)
def test_icd10cm_prefixes_with_and_without_dot(
    k: Knowledge, valueset: str, code: str, expected: bool
) -> None:
    assert k.valuesets[valueset].matches_coding(ICD10CM, code) is expected


@pytest.mark.parametrize(
    ("valueset", "code", "expected"),
    [
        ("insulin-animal", "A10AB03", True),
        ("insulin-animal", "A10AC02", True),
        ("insulin-animal", "A10AE03", True),
        ("insulin-animal", "a10ad02", True),
        ("insulin-animal", "A10AB01", False),
        ("insulin-animal", "A10AB04", False),
        ("insulin-animal", "A10AB030", False),
        ("insulin-human-or-analogue", "A10AB01", True),
        ("insulin-human-or-analogue", "A10AE04", True),
        ("insulin-human-or-analogue", "A10AE56", True),
        ("insulin-human-or-analogue", "A10AB03", False),
        ("insulin-human-or-analogue", "A10AC02", False),
        ("insulin-any", "A10AB03", True),
        ("insulin-any", "A10BA02", False),
        ("insulin-rapid-short", "A10AB05", True),
        ("insulin-intermediate", "A10AC01", True),
        ("insulin-premixed", "A10AD04", True),
        ("insulin-long", "A10AE06", True),
        ("insulin-long", "A10AD06", False),
        ("glucocorticoid-systemic", "H02AB06", True),
        ("glucocorticoid-systemic", "H02AA02", False),
        ("glucocorticoid-non-systemic-form", "R03BA02", True),
        ("glucocorticoid-non-systemic-form", "D07AC09", True),
        ("glucocorticoid-non-systemic-form", "A07EA06", True),
        ("glucocorticoid-non-systemic-form", "S01BA01", True),
        ("glucocorticoid-non-systemic-form", "H02AB06", False),
    ],
)
def test_atc_patterns(k: Knowledge, valueset: str, code: str, expected: bool) -> None:
    assert k.valuesets[valueset].matches_coding(ATC, code) is expected


def test_rxnorm_and_snomed_codes(k: Knowledge) -> None:
    vs = k.valuesets
    assert vs["insulin-any"].matches_coding(RXNORM, "5856")
    # The generic "insulin" ingredient does not say which insulin: never "human".
    assert not vs["insulin-human-or-analogue"].matches_coding(RXNORM, "5856")
    assert vs["insulin-human-or-analogue"].matches_coding(RXNORM, "274783")
    assert vs["insulin-long"].matches_coding(RXNORM, "274783")
    assert vs["glucocorticoid-systemic"].matches_coding(RXNORM, "8640")
    assert vs["insulin-animal"].codes(RXNORM) == []  # the placeholder is empty until verified
    assert vs["sle"].matches_coding(SNOMED, "55464009")
    assert vs["type-b-insulin-resistance"].matches_coding(SNOMED, "237652003")
    assert vs["route-non-systemic"].matches_coding(SNOMED, "447694001")
    assert not vs["route-non-systemic"].matches_coding(SNOMED, "26643006")  # oral
    assert vs["insulin-receptor-antibody"].matches_coding(LOCAL_TESTS_SYSTEM, "INSR-AB")


@pytest.mark.parametrize(
    ("valueset", "text", "expected"),
    [
        ("insulin-antibody", "Insulin antibody", True),
        ("insulin-antibody", "Insulin Ab", True),
        ("insulin-antibody", "Insulin Abs, S", True),
        ("insulin-antibody", "Anti-insulin antibodies", True),
        ("insulin-antibody", "IAA", True),
        ("insulin-antibody", "Insulin autoantibody", True),
        ("insulin-antibody", "Insulin receptor antibody", False),
        ("insulin-antibody", "Anti-insulin receptor Ab", False),
        ("insulin-antibody", "Insulin", False),
        ("insulin-receptor-antibody", "Insulin receptor antibody", True),
        ("insulin-receptor-antibody", "Anti-insulin receptor antibodies", True),
        ("insulin-receptor-antibody", "insulin receptor Ab", True),
        ("insulin-receptor-antibody", "Insulin antibody", False),
        ("ana", "Antinuclear antibodies", True),
        ("ana", "Anti-nuclear Ab", True),
        ("ana", "ANA screen", True),
        ("ana", "ANA titre", True),
        ("ana", "ANA Titer", True),
        ("ana", "ANA", True),
        ("ana", "ANA pattern", False),
        ("ana", "ANCA", False),
        ("insulin", "Insulin", False),  # quantitative labs match by code only
        ("glucose", "Glucose, urine", False),
        ("insulin-any", "Insulin glargine 100 unit/mL pen", True),
        ("insulin-any", "Lantus SoloStar", True),
        ("insulin-any", "Hypurin Porcine Neutral", True),
        ("insulin-any", "BD insulin syringe 0.5 mL", False),
        ("insulin-any", "Insulin pen needles 4 mm", False),
        ("insulin-any", "Metformin 500 mg", False),
        ("insulin-animal", "Hypurin Bovine Lente", True),
        ("insulin-animal", "Iletin II Regular (pork)", True),
        ("insulin-animal", "Pork Actrapid", True),
        ("insulin-animal", "Insulin, Regular, Pork", True),
        ("insulin-animal", "porcine neutral insulin", True),
        ("insulin-animal", "Humulin R", False),
        ("insulin-animal", "Actrapid", False),
        ("insulin-human-or-analogue", "Human Actrapid", True),
        ("insulin-human-or-analogue", "Actrapid", True),
        ("insulin-human-or-analogue", "Pork Actrapid", False),
        ("insulin-human-or-analogue", "Hypurin Porcine Isophane", False),
        ("insulin-human-or-analogue", "Insulin lispro", True),
        ("insulin-human-or-analogue", "insulin, regular, human", True),
        ("insulin-rapid-short", "Insulin regular human", True),
        ("insulin-rapid-short", "Humulin R U-100", True),
        ("insulin-rapid-short", "NovoRapid FlexPen", True),
        ("insulin-rapid-short", "Humalog Mix 25", False),
        ("insulin-rapid-short", "Humulin 70/30", False),
        ("insulin-intermediate", "Insulin isophane (NPH) human", True),
        ("insulin-intermediate", "Humulin N", True),
        ("insulin-intermediate", "Hypurin Bovine Lente", True),
        ("insulin-intermediate", "Mixtard 30", False),
        (
            "insulin-intermediate",
            "insulin isophane, human 70 UNT/ML / insulin regular, human 30 UNT/ML",
            False,
        ),
        ("insulin-premixed", "insulin isophane, human 70 UNT/ML / insulin regular, human 30 UNT/ML", True),
        ("insulin-premixed", "Pork Mixtard 30", True),
        ("insulin-premixed", "Humulin 70/30", True),
        ("insulin-premixed", "Insulin aspart protamine 70 UNT/ML / insulin aspart 30 UNT/ML", True),
        ("insulin-premixed", "Insulin glargine", False),
        ("insulin-long", "Insulin glargine", True),
        ("insulin-long", "Protamine zinc insulin (PZI)", True),
        ("insulin-long", "Ultralente", True),
        ("insulin-long", "Ryzodeg 70/30 (degludec/aspart)", False),
        ("insulin-intermediate", "Ultralente", False),
        ("glucocorticoid-systemic", "Prednisone 5 mg tablet", True),
        ("glucocorticoid-systemic", "Methylprednisolone sodium succinate", True),
        ("glucocorticoid-systemic", "Dexamethasone 4 mg", True),
        ("glucocorticoid-systemic", "Hydrocortisone 10 mg", True),
        ("glucocorticoid-systemic", "Fludrocortisone 0.1 mg", False),
        ("glucocorticoid-systemic", "Fluticasone propionate", False),
        ("glucocorticoid-non-systemic-form", "Budesonide 200 mcg inhaler", True),
        ("glucocorticoid-non-systemic-form", "Hydrocortisone 1% cream", True),
        ("glucocorticoid-non-systemic-form", "Dexamethasone 0.1% eye drops", True),
        ("glucocorticoid-non-systemic-form", "Mometasone nasal spray", True),
        ("glucocorticoid-non-systemic-form", "Hydrocortisone 100 mg/60 mL enema", False),  # documented choice
        ("glucocorticoid-non-systemic-form", "Prednisolone 5 mg tablet", False),
        ("route-non-systemic", "Inhalation", True),
        ("route-non-systemic", "Topical", True),
        ("route-non-systemic", "Ophthalmic", True),
        ("route-non-systemic", "Both eyes", True),
        ("route-non-systemic", "Left ear", True),
        ("route-non-systemic", "Intranasal", True),
        ("route-non-systemic", "Subcutaneous", False),
        ("route-non-systemic", "Oral", False),
        ("route-non-systemic", "Intravenous", False),
        ("diabetes", "Type 2 diabetes mellitus without complications", True),
        ("diabetes", "Diabetes insipidus", False),
        ("diabetes", "Prediabetes", False),
        ("diabetes", "Family history of diabetes", False),
        ("type-2-diabetes", "T2DM", True),
        ("type-2-diabetes", "Type 1 diabetes", False),
        ("sle", "Systemic lupus erythematosus", True),
        ("sle", "Discoid lupus erythematosus", False),
        ("sjogren", "Sjögren's syndrome", True),
        ("autoimmune-thyroid", "Hashimoto's thyroiditis", True),
        ("autoimmune-thyroid", "Graves' disease", True),
        ("addison", "Addison's disease", True),
        ("ataxia-telangiectasia", "Ataxia-telangiectasia", True),
        ("ataxia-telangiectasia", "Louis-Bar syndrome", True),
        ("pcos", "PCOS", True),
        ("metabolic-syndrome", "Metabolic syndrome", True),
        ("hyperlipidaemia", "Mixed hyperlipidemia", True),
        ("hyperlipidaemia", "Familial hypercholesterolaemia (FH)", True),
        ("ckd-uraemia", "CKD stage 4", True),
        ("ckd-uraemia", "Uraemia", True),
        ("ckd-uraemia", "Hyperuricemia", False),
        ("obesity", "Morbid obesity", True),
        ("obesity", "Overweight", False),
        ("pregnancy", "Pregnant, 24 weeks", True),
        ("pregnancy", "Not pregnant", False),
        ("pregnancy", "History of gestational diabetes", False),
        ("acromegaly", "Acromegaly", True),
        ("cushing", "Cushing's syndrome", True),
        ("type-b-insulin-resistance", "Type B insulin resistance", True),
    ],
)
def test_text_patterns_and_excludes(k: Knowledge, valueset: str, text: str, expected: bool) -> None:
    assert k.valuesets[valueset].matches_text(text) is expected


def test_matches_concept_by_coding_text_or_display(k: Knowledge) -> None:
    receptor = k.valuesets["insulin-receptor-antibody"]
    antibody = k.valuesets["insulin-antibody"]
    local = {"coding": [{"system": "urn:oid:1.2.3", "code": "X1", "display": "Insulin receptor Ab"}]}
    assert receptor.matches_concept(local)
    assert not antibody.matches_concept(local)
    assert antibody.matches_concept(
        {"text": "Insulin antibodies", "coding": [{"system": "urn:x", "code": "1"}]}
    )
    assert antibody.matches_concept({"coding": [{"system": LOINC, "code": "8072-1"}]})
    # An exclude hit on any name of the concept vetoes its text match ...
    assert not antibody.matches_concept(
        {"text": "Insulin Ab", "coding": [{"display": "Insulin receptor Ab"}]}
    )
    # ... but never a code match.
    assert antibody.matches_concept({"text": "receptor?", "coding": [{"system": LOINC, "code": "56546-5"}]})
    assert not antibody.matches_concept(None)
    assert not antibody.matches_concept({"coding": "not a list"})
    assert not antibody.matches_concept({})
    assert k.valuesets["sle"].matches_concept({"coding": [{"system": ICD10CM, "code": "M3210"}]})


def test_matches_text_without_text_patterns_is_false(k: Knowledge) -> None:
    assert not k.valuesets["body-weight"].matches_text("Body weight")
    assert not k.valuesets["ana"].matches_text(None)
    assert not k.valuesets["ana"].matches_text("   ")


# ---------------------------------------------------------------------------------------------- fail fast


def _edit_json(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_broken_json_names_the_file(knowledge_copy: Path) -> None:
    (knowledge_copy / "valuesets" / "sle.json").write_text("{ not json", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"sle\.json: not readable JSON"):
        load_knowledge(knowledge_copy, env={})


def test_invalid_regex_names_file_and_place(knowledge_copy: Path) -> None:
    def edit(data: dict) -> None:
        data["compose"]["include"][0]["filter"][0]["value"] = "^M32("

    _edit_json(knowledge_copy / "valuesets" / "sle.json", edit)
    with pytest.raises(
        KnowledgeError, match=r"sle\.json: compose\.include\[0\]\.filter\[0\]\.value: invalid regular"
    ):
        load_knowledge(knowledge_copy, env={})


def test_invalid_text_pattern_is_an_error(knowledge_copy: Path) -> None:
    def edit(data: dict) -> None:
        data["extension"][0]["valueString"] = "[unclosed"

    _edit_json(knowledge_copy / "valuesets" / "ana.json", edit)
    with pytest.raises(KnowledgeError, match=r"ana\.json: extension\[0\]: invalid regular expression"):
        load_knowledge(knowledge_copy, env={})


def test_missing_source_is_an_error(knowledge_copy: Path) -> None:
    def edit(data: dict) -> None:
        del data["compose"]["include"][0]["concept"][0]["extension"]

    _edit_json(knowledge_copy / "valuesets" / "insulin.json", edit)
    with pytest.raises(
        KnowledgeError, match=r"insulin\.json: compose\.include\[0\]\.concept\[0\]: missing source"
    ):
        load_knowledge(knowledge_copy, env={})


def test_include_of_a_whole_code_system_is_refused(knowledge_copy: Path) -> None:
    def edit(data: dict) -> None:
        del data["compose"]["include"][1]["concept"]

    _edit_json(knowledge_copy / "valuesets" / "insulin-animal.json", edit)
    with pytest.raises(
        KnowledgeError, match=r"insulin-animal\.json: compose\.include\[1\]: needs 'concept' or"
    ):
        load_knowledge(knowledge_copy, env={})


def test_id_must_match_file_name(knowledge_copy: Path) -> None:
    _edit_json(knowledge_copy / "valuesets" / "pcos.json", lambda d: d.update(id="pcos2"))
    with pytest.raises(KnowledgeError, match=r"pcos\.json: id: must equal the file name"):
        load_knowledge(knowledge_copy, env={})


def test_missing_valueset_is_an_error(knowledge_copy: Path) -> None:
    (knowledge_copy / "valuesets" / "cushing.json").unlink()
    with pytest.raises(KnowledgeError, match="missing value sets: cushing"):
        load_knowledge(knowledge_copy, env={})


def test_broken_toml_names_the_file(knowledge_copy: Path) -> None:
    (knowledge_copy / "thresholds.toml").write_text("[insulin_elevated\nvalue = 50\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"thresholds\.toml: invalid TOML"):
        load_knowledge(knowledge_copy, env={})


def test_non_numeric_threshold_in_file_is_an_error(knowledge_copy: Path) -> None:
    path = knowledge_copy / "thresholds.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("value = 50\n", 'value = "fifty"\n'), encoding="utf-8"
    )
    with pytest.raises(
        KnowledgeError, match=r"thresholds\.toml: \[insulin_elevated\]\.value: a finite number"
    ):
        load_knowledge(knowledge_copy, env={})


def test_unknown_key_in_labs_is_an_error(knowledge_copy: Path) -> None:
    path = knowledge_copy / "labs.toml"
    text = path.read_text(encoding="utf-8").replace("lookback_days = 90\n", "lookback_dayz = 90\n", 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"labs\.toml: \[glucose\]: unknown key\(s\) lookback_dayz"):
        load_knowledge(knowledge_copy, env={})


def test_unit_with_unknown_valueset_is_an_error(knowledge_copy: Path) -> None:
    path = knowledge_copy / "labs.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace('valueset = "ana"', 'valueset = "anna"'), encoding="utf-8"
    )
    with pytest.raises(KnowledgeError, match=r"labs\.toml: \[ana\]\.valueset: no value set 'anna'"):
        load_knowledge(knowledge_copy, env={})


def test_conflicting_unit_spellings_are_an_error(knowledge_copy: Path) -> None:
    path = knowledge_copy / "labs.toml"
    extra = '\n[insulin.units."UIU/ML"]\nfactor = 2.0\nsource = "conflicts with uIU/mL"\n'
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    with pytest.raises(
        KnowledgeError, match=r"labs\.toml: \[insulin\.units\.\"UIU/ML\"\]: normalises to 'uiu/ml'"
    ):
        load_knowledge(knowledge_copy, env={})


def test_missing_knowledge_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match="knowledge directory not found"):
        load_knowledge(tmp_path / "nowhere", env={})


def test_missing_file_is_an_error(knowledge_copy: Path) -> None:
    (knowledge_copy / "workup.toml").unlink()
    with pytest.raises(KnowledgeError, match=r"workup\.toml: file not found"):
        load_knowledge(knowledge_copy, env={})


def test_concept_and_filter_in_one_include_is_refused(knowledge_copy: Path) -> None:
    def edit(data: dict) -> None:
        data["compose"]["include"][0]["concept"] = [data["compose"]["include"][1]["concept"][0]]

    _edit_json(knowledge_copy / "valuesets" / "sle.json", edit)
    with pytest.raises(KnowledgeError, match=r"sle\.json: compose\.include\[0\]: FHIR vsd-3"):
        load_knowledge(knowledge_copy, env={})


def test_two_filters_in_one_include_are_refused(knowledge_copy: Path) -> None:
    def edit(data: dict) -> None:
        data["compose"]["include"][0]["filter"].append(data["compose"]["include"][0]["filter"][0])

    _edit_json(knowledge_copy / "valuesets" / "sle.json", edit)
    with pytest.raises(
        KnowledgeError, match=r"sle\.json: compose\.include\[0\]\.filter: one filter per include"
    ):
        load_knowledge(knowledge_copy, env={})


# ------------------------------------------------------------------------ issue 14 knowledge additions


def test_glucocorticoid_equivalents_follow_the_bnf_table(k: Knowledge) -> None:
    doses = {e.name: e.dose_mg for e in k.glucocorticoid_equivalents}
    assert {
        name: doses[name] for name in ("prednisolone", "hydrocortisone", "cortisone", "methylprednisolone")
    } == {
        "prednisolone": 5,
        "hydrocortisone": 20,
        "cortisone": 25,
        "methylprednisolone": 4,
    }
    assert (doses["triamcinolone"], doses["dexamethasone"], doses["betamethasone"], doses["deflazacort"]) == (
        4,
        0.75,
        0.75,
        6,
    )
    assert {"fluprednisolone", "paramethasone", "meprednisone"} <= set(doses)
    by_name = {e.name: e for e in k.glucocorticoid_equivalents}
    assert by_name["hydrocortisone"].prednisolone_mg(30) == 7.5
    assert by_name["prednisolone"].matches_text("prednisoLONE 5 MG Oral Tablet")
    assert not by_name["prednisolone"].matches_text("methylprednisolone 4 mg")
    assert not by_name["cortisone"].matches_text("hydrocortisone 10 mg")
    assert by_name["dexamethasone"].matches_coding("http://www.whocc.no/atc", "h02ab02")
    assert all(e.source for e in k.glucocorticoid_equivalents)


def test_issue_14_thresholds_are_overridable(knowledge_copy: Path) -> None:
    k = load_knowledge(knowledge_copy, env={"CDS_HOOKS_THRESHOLD_ANIMAL_INSULIN_PAST_YEARS": "5"})
    assert k.threshold("animal_insulin_past_years") == 5
    assert k.thresholds["animal_insulin_past_years"].default == 3
    defaults = load_knowledge(knowledge_copy, env={})
    assert (
        defaults.threshold("medication_request_current_days"),
        defaults.threshold("glucocorticoid_replacement_max"),
        defaults.threshold("ana_titre_type_b"),
        defaults.threshold("tdd_type_b_support_per_kg"),
        defaults.threshold("bmi_type_b_support"),
    ) == (400, 7.5, 160, 3, 30)
    assert defaults.workup["ana"].not_with == ("sle", "sjogren", "rheumatoid-arthritis")


def test_equivalence_table_without_prednisolone_is_an_error(knowledge_copy: Path) -> None:
    path = knowledge_copy / "glucocorticoids.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("[prednisolone]", "[prednisolon]"), encoding="utf-8"
    )
    with pytest.raises(
        KnowledgeError, match=r"glucocorticoids\.toml: the reference \[prednisolone\] is required"
    ):
        load_knowledge(knowledge_copy, env={})


def test_workup_exclusion_naming_an_unknown_value_set_is_an_error(knowledge_copy: Path) -> None:
    path = knowledge_copy / "workup.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('"sjogren", ', '"sjogrens", '), encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"workup\.toml: \[tests\.ana\]\.not_with_conditions"):
        load_knowledge(knowledge_copy, env={})

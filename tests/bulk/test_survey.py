"""``cds-hooks survey`` on a real local Spark: a site's local glucose code is listed as looking like
glucose, the draft ConceptMap maps it to LOINC, and with that map named in CDS_HOOKS_SITE_CONCEPT_MAP the
bulk screen reads those results (the same knowledge loading as the service, tests/bulk/test_site_codes)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from cds_hooks.bulk.ndjson import discover
from cds_hooks.bulk.spark_job import run_screen
from cds_hooks.bulk.stages import knowledge_env
from cds_hooks.cli.main import main
from tests.bulk.conftest import NOW

pytestmark = pytest.mark.xdist_group("spark")
LOCAL = "https://lab.example-hospital.org/codes"


def test_survey_finds_the_local_code_and_its_map_reaches_the_screen(
    spark, examples_export, tmp_path, capsys, monkeypatch
):
    directory = tmp_path / "export"
    shutil.copytree(examples_export, directory)
    local = [
        {"resourceType": "Observation", "id": f"local-glu-{i}", "status": "final",
         "subject": {"reference": "Patient/ex01"},
         "code": {"coding": [{"system": LOCAL, "code": "GLU-S", "display": "Glucose, serum"}]},
         "effectiveDateTime": NOW.date().isoformat(), "valueQuantity": {"value": 110 + i, "unit": "mg/dL"}}
        for i in range(12)
    ]  # fmt: skip
    (directory / "Observation-local.ndjson").write_text("".join(json.dumps(r) + "\n" for r in local))
    site_map = tmp_path / "site-map.json"
    assert main(["survey", "--bulk", str(directory), "--concept-map", str(site_map)]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "GLU-S" in line)
    assert line.split()[:4] == ["lab", "12", "looks", "like"] and "glucose" in line and "mg/dL (12)" in line
    assert "read by code" in out  # the examples' LOINC codes
    document = json.loads(site_map.read_text())
    assert document["resourceType"] == "ConceptMap" and document["status"] == "draft"
    (group,) = [g for g in document["group"] if g["source"] == LOCAL]
    assert group["target"] == "http://loinc.org"
    assert [(e["code"], e["target"][0]["code"]) for e in group["element"]] == [("GLU-S", "2345-7")]

    def kept() -> int:
        outcome = run_screen(spark, discover(directory), now=NOW, env=knowledge_env(os.environ), base_url="x")
        return outcome.counts["kept", "Observation"]

    before = kept()
    monkeypatch.setenv("CDS_HOOKS_SITE_CONCEPT_MAP", str(site_map))
    assert kept() == before + len(local)

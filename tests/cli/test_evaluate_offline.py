"""``cds-hooks evaluate REQUEST.json``: a saved request evaluated from its prefetch alone."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cds_hooks.__main__ import main
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.hooks.registry import prefetch_templates
from tests.builders import (
    bundle,
    empty_prefetch,
    glucose,
    patient,
    porcine_request,
    porcine_statement,
    request,
)
from tests.cli.conftest import PORK_SUMMARY

REPO = Path(__file__).resolve().parents[2]


def save(tmp_path: Path, body: Any, name: str = "request.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(body) if not isinstance(body, str) else body)
    return str(path)


def test_human_output_shows_summary_rule_evidence_and_suggestion(tmp_path, capsys):
    path = save(tmp_path, porcine_request("off-1"))

    assert main(["evaluate", path]) == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"Patient off-1 (from {path}, prefetch only): 1 card"
    assert f"1. INFO  {PORK_SUMMARY}" in lines
    assert "   rule: animal-insulin-switch" in lines
    # The evidence list of the card's detail, without the markdown.
    evidence = lines.index("   Evidence")
    assert lines[evidence + 1] == (
        "     - Hypurin Porcine Neutral (recorded as taken, active): "
        "stop it when human insulin starts (no prescription here to update)"
    )
    assert (
        "     * Start insulin regular, human at a dose to set; stop Hypurin Porcine Neutral (recommended)"
    ) in lines
    assert "         create MedicationRequest (draft): Order insulin regular, human at a dose to set" in lines
    assert "**" not in out


def test_absent_keys_are_named_and_count_as_no_data(tmp_path, capsys):
    body = request(
        "off-2", {"patient": patient("off-2"), "medicationStatements": bundle(porcine_statement("off-2"))}
    )
    path = save(tmp_path, body)

    assert main(["evaluate", path]) == 0

    first = capsys.readouterr().out.splitlines()[0]
    absent = [k for k in prefetch_templates(default_knowledge()) if k not in body["prefetch"]]
    assert "devices" in absent and "observations" in absent  # every template key the file lacks, in order
    assert first == (
        f"Patient off-2 (from {path}, prefetch only; absent keys count as no data: "
        f"{', '.join(absent)}): 1 card"
    )


def test_json_is_the_raw_cds_hooks_response(tmp_path, capsys):
    path = save(tmp_path, porcine_request("off-3"))

    assert main(["evaluate", path, "--json"]) == 0

    response = json.loads(capsys.readouterr().out)
    assert [c["source"]["topic"]["code"] for c in response["cards"]] == ["animal-insulin-switch"]
    assert response["cards"][0]["summary"] == PORK_SUMMARY
    assert response["cards"][0]["suggestions"][0]["actions"][0]["resource"]["resourceType"] == (
        "MedicationRequest"
    )


def test_no_cards(tmp_path, capsys):
    body = porcine_request("off-4")
    body["prefetch"]["medicationStatements"] = bundle()

    assert main(["evaluate", save(tmp_path, body)]) == 0

    assert capsys.readouterr().out.endswith(": no cards\n")


def test_the_files_fhir_server_and_token_are_not_used_offline(tmp_path, capsys):
    """A request saved from an EHR names its server and token; offline, nothing is fetched or shown."""
    body = porcine_request("off-5")
    del body["prefetch"]["conditions"]
    body["fhirServer"] = "http://127.0.0.1:9/fhir"
    body["fhirAuthorization"] = {"access_token": "ehr-secret-token", "token_type": "Bearer"}

    assert main(["evaluate", save(tmp_path, body)]) == 0

    captured = capsys.readouterr()
    assert PORK_SUMMARY in captured.out
    assert "ehr-secret-token" not in captured.out + captured.err


def test_now_sets_the_evaluation_time(tmp_path, capsys):
    """A glucose of 300 mg/dL on prednisone counts only within its lookback window of --now."""
    pid = "off-6"
    prednisone = {
        "resourceType": "MedicationStatement",
        "id": "off-6-pred",
        "status": "active",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.whocc.no/atc", "code": "H02AB07"}],
            "text": "Prednisone 20 mg tablet",
        },
        "subject": {"reference": f"Patient/{pid}"},
    }
    prefetch = empty_prefetch(pid)
    prefetch["medicationStatements"] = bundle(prednisone)
    prefetch["observations"] = bundle(glucose(pid, "off-6-glu", 300, "2026-05-20T08:00:00Z"))
    path = save(tmp_path, request(pid, prefetch))

    assert main(["evaluate", path, "--json", "--now", "2026-06-01T12:00:00Z"]) == 0
    soon = json.loads(capsys.readouterr().out)
    assert main(["evaluate", path, "--json", "--now", "2028-06-01"]) == 0
    years_later = json.loads(capsys.readouterr().out)

    assert [c["source"]["topic"]["code"] for c in soon["cards"]] == ["glucocorticoid-hyperglycemia"]
    assert years_later["cards"] == []


# ---------------------------------------------------------------- a bad request file: exit 1


def test_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert main(["evaluate", str(missing)]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"cds-hooks: request file '{missing}' not found\n"
    assert captured.out == ""


def test_invalid_json(tmp_path, capsys):
    path = save(tmp_path, '{"hook": "patient-view",\n  "context": }')
    assert main(["evaluate", path]) == 1
    assert capsys.readouterr().err == (
        f"cds-hooks: request file '{path}' is not valid JSON: Expecting value at line 2, column 14\n"
    )


def test_invalid_cds_hooks_request_gives_the_protocol_message(tmp_path, capsys):
    body = porcine_request("off-7")
    del body["hookInstance"]
    path = save(tmp_path, body)
    assert main(["evaluate", path]) == 1
    assert capsys.readouterr().err == (
        f"cds-hooks: request file '{path}' is not a valid CDS Hooks request: "
        "The request is missing the required member(s): hookInstance.\n"
    )


def test_request_for_another_hook(tmp_path, capsys):
    body = porcine_request("off-8")
    body["hook"] = "order-select"
    assert main(["evaluate", save(tmp_path, body)]) == 1
    assert "answers the 'patient-view' hook, but the request is for 'order-select'" in capsys.readouterr().err


def test_request_from_standard_input(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(porcine_request("off-9"))))
    assert main(["evaluate", "-", "--json"]) == 0
    assert (
        json.loads(capsys.readouterr().out)["cards"][0]["source"]["topic"]["code"] == "animal-insulin-switch"
    )


# ---------------------------------------------------------------- usage errors: exit 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate"], "give REQUEST.json, or --fhir-server URL --patient ID"),
        (["evaluate", "--patient", "p1"], "--patient needs --fhir-server"),
        (["evaluate", "r.json", "--token=t"], "--token needs --fhir-server"),
        (["evaluate", "r.json", "--fhir-server", "http://x/fhir", "--patient", "p"], "not both"),
        (["evaluate", "r.json", "--fhir-server", "ftp://x"], "must be an absolute http(s) URL"),
        (["evaluate", "r.json", "--now", "yesterday"], "must be an ISO 8601 date or date-time"),
    ],
)
def test_usage_errors_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_configuration_error_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CDS_HOOKS_FHIR_READ_TIMEOUT", "soon")
    assert main(["evaluate", save(tmp_path, porcine_request("off-10"))]) == 2
    assert "configuration error: CDS_HOOKS_FHIR_READ_TIMEOUT must be a number" in capsys.readouterr().err


def test_console_entry_point_as_a_subprocess(tmp_path):
    """The real process: ``python -m cds_hooks evaluate`` prints JSON on stdout and exits 0."""
    path = save(tmp_path, porcine_request("off-11"))
    done = subprocess.run(
        [sys.executable, "-m", "cds_hooks", "evaluate", path, "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cards"][0]["source"]["topic"]["code"] == "animal-insulin-switch"
    assert done.stderr == ""

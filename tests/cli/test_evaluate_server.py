"""``cds-hooks evaluate`` against the real sekmet-fhir server: a patient id, or a saved request whose
missing keys are fetched; and the messages for a refused token, a dead server, an unknown patient."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cds_hooks.__main__ import main
from cds_hooks.testing.fhir_test_server import free_port
from tests.builders import bundle, patient, request
from tests.cli.conftest import EMPTY, PORK, PORK_SUMMARY, UNKNOWN
from tests.misbehaving_server import misbehaving_server

pytestmark = pytest.mark.usefixtures("cli_server")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_patient_evaluated_as_the_ehr_would(cli_server, capsys):
    code, out, err = run(
        capsys,
        "evaluate",
        "--fhir-server",
        cli_server.base_url,
        "--patient",
        PORK,
        f"--token={cli_server.token}",
    )

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"Patient {PORK} on {cli_server.base_url}: 1 card"
    assert f"1. INFO  {PORK_SUMMARY}" in lines
    assert (
        "     - Hypurin Porcine Neutral (recorded as taken, active): "
        "stop it when human insulin starts (no prescription here to update)"
    ) in lines
    assert cli_server.token not in out


def test_patient_json(cli_server, capsys):
    code, out, _ = run(
        capsys,
        "evaluate",
        "--fhir-server",
        cli_server.base_url,
        "--patient",
        PORK,
        f"--token={cli_server.token}",
        "--json",
    )
    assert code == 0
    assert [c["source"]["topic"]["code"] for c in json.loads(out)["cards"]] == ["animal-insulin-switch"]


def test_patient_with_nothing_on_record(cli_server, capsys):
    code, out, _ = run(
        capsys,
        "evaluate",
        "--fhir-server",
        cli_server.base_url,
        "--patient",
        EMPTY,
        f"--token={cli_server.token}",
    )
    assert (code, out) == (0, f"Patient {EMPTY} on {cli_server.base_url}: no cards\n")


def test_saved_request_fetches_only_what_is_missing(cli_server, tmp_path, capsys):
    """Offline the request has no medication data; with --fhir-server the absent keys are fetched (the
    file's own server and token are replaced by the options)."""
    body = request(PORK, {"patient": patient(PORK), "conditions": bundle()})
    body["fhirServer"] = "https://ehr.example.org/fhir"
    body["fhirAuthorization"] = {"access_token": "ehr-secret-token", "token_type": "Bearer"}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))

    offline = run(capsys, "evaluate", str(path))
    online = run(
        capsys, "evaluate", str(path), "--fhir-server", cli_server.base_url, f"--token={cli_server.token}"
    )

    assert offline[0] == 0 and offline[1].endswith(": no cards\n")
    code, out, err = online
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (
        f"Patient {PORK} (from {path}; missing data from {cli_server.base_url}): 1 card"
    )
    assert PORK_SUMMARY in out
    assert "ehr-secret-token" not in out + err


def test_wrong_token_is_refused_and_never_printed(cli_server, capsys):
    code, out, err = run(
        capsys,
        "evaluate",
        "--fhir-server",
        cli_server.base_url,
        "--patient",
        PORK,
        "--token=wrong-token-xyz",
    )
    assert (code, out) == (1, "")
    assert err == (
        f"cds-hooks: the FHIR server refused the token (HTTP 401) at {cli_server.base_url}: check --token\n"
    )
    assert "wrong-token-xyz" not in err


@pytest.mark.parametrize("how", ["equals form", "environment"])
def test_token_that_starts_with_a_dash(cli_server, capsys, monkeypatch, how):
    """URL-safe tokens may start with "-"; ``--token=-…`` and $CDS_HOOKS_FHIR_TOKEN both pass it through
    (``--token -…`` is read by argparse as an option, hence the documented ``=`` form)."""
    argv = ["evaluate", "--fhir-server", cli_server.base_url, "--patient", PORK]
    if how == "environment":
        monkeypatch.setenv("CDS_HOOKS_FHIR_TOKEN", "-wrong-token-xyz")
    else:
        argv.append("--token=-wrong-token-xyz")
    code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert err == (
        f"cds-hooks: the FHIR server refused the token (HTTP 401) at {cli_server.base_url}: check --token\n"
    )


def test_wrong_token_with_a_saved_request(cli_server, tmp_path, capsys):
    """All but the patient prefetched: the 412 from the pipeline is explained as the refused token."""
    body = request(PORK, {"patient": patient(PORK)})
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))
    code, _, err = run(
        capsys, "evaluate", str(path), "--fhir-server", cli_server.base_url, "--token=wrong-token-xyz"
    )
    assert code == 1
    assert err == (
        f"cds-hooks: the FHIR server refused the token (HTTP 401) at {cli_server.base_url}: check --token\n"
    )


def test_missing_token(cli_server, capsys):
    code, _, err = run(capsys, "evaluate", "--fhir-server", cli_server.base_url, "--patient", PORK)
    assert code == 1
    assert err == (
        f"cds-hooks: the FHIR server at {cli_server.base_url} requires a token (HTTP 401): "
        "pass one with --token\n"
    )


def test_unknown_patient(cli_server, capsys):
    code, out, err = run(
        capsys,
        "evaluate",
        "--fhir-server",
        cli_server.base_url,
        "--patient",
        UNKNOWN,
        f"--token={cli_server.token}",
    )
    assert (code, out) == (1, "")
    assert err == f"cds-hooks: no patient '{UNKNOWN}' on {cli_server.base_url}\n"


def test_unreachable_server(capsys):
    url = f"http://127.0.0.1:{free_port()}/fhir"
    code, out, err = run(capsys, "evaluate", "--fhir-server", url, "--patient", PORK, "--token=secret-xyz")
    assert (code, out) == (1, "")
    assert err == (
        f"cds-hooks: the FHIR server at {url} could not be reached: "
        "check the URL and that the server is running\n"
    )
    assert "secret-xyz" not in err


def test_not_a_fhir_base_url(cli_server, capsys):
    """Without /fhir every read is a 404: say the URL is wrong, not that the patient is unknown."""
    root = cli_server.base_url.removesuffix("/fhir")
    code, _, err = run(
        capsys, "evaluate", "--fhir-server", root, "--patient", PORK, f"--token={cli_server.token}"
    )
    assert code == 1
    assert err.startswith(
        f"cds-hooks: {root} is not a FHIR server base URL: GET {root}/metadata answered 404"
    )


def test_invalid_patient_id(cli_server, capsys):
    code, _, err = run(
        capsys, "evaluate", "--fhir-server", cli_server.base_url, "--patient", "no such/id", "--token=t"
    )
    assert code == 1
    assert err == (
        "cds-hooks: the request for patient 'no such/id' is not a valid CDS Hooks request: "
        "'context.patientId' is not a valid FHIR id: 'no such/id'.\n"
    )


def test_saved_request_on_a_dead_server(tmp_path, capsys):
    body = request(PORK, {"patient": patient(PORK)})
    path = Path(tmp_path / "request.json")
    path.write_text(json.dumps(body))
    url = f"http://127.0.0.1:{free_port()}/fhir"
    code, _, err = run(capsys, "evaluate", str(path), "--fhir-server", url)
    assert code == 1
    assert f"the FHIR server at {url} could not be reached" in err


def test_slow_server(monkeypatch, capsys):
    monkeypatch.setenv("CDS_HOOKS_FHIR_READ_TIMEOUT", "0.3")
    with misbehaving_server(
        lambda path, headers: (200, {"resourceType": "CapabilityStatement"}), delay=1.0
    ) as (
        url,
        _,
    ):
        code, out, err = run(capsys, "evaluate", "--fhir-server", url, "--patient", PORK)
    assert (code, out) == (1, "")
    assert err == (
        f"cds-hooks: the FHIR server at {url} did not answer within 0.3 s: it may be slow or overloaded; "
        "CDS_HOOKS_FHIR_READ_TIMEOUT raises the limit\n"
    )


def test_token_from_the_environment(cli_server, capsys, monkeypatch):
    """CDS_HOOKS_FHIR_TOKEN keeps the token out of the process list and shell history."""
    monkeypatch.setenv("CDS_HOOKS_FHIR_TOKEN", cli_server.token)
    code, out, err = run(capsys, "evaluate", "--fhir-server", cli_server.base_url, "--patient", PORK)
    assert (code, err) == (0, "")
    assert f"1. INFO  {PORK_SUMMARY}" in out.splitlines()
    assert cli_server.token not in out

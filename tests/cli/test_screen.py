"""``cds-hooks screen`` against the real sekmet-fhir server: rows, summary, files, failures, progress."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from cds_hooks.__main__ import main
from cds_hooks.cli import screen as cli_screen
from cds_hooks.cli.evaluate import Evaluator
from cds_hooks.cli.screen import Progress
from cds_hooks.testing.fhir_test_server import free_port
from tests.cli.conftest import EMPTY, OPEN_EMPTY, OPEN_PORK, PORK, PORK_SUMMARY, UNKNOWN
from tests.misbehaving_server import misbehaving_server


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_csv(path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["patient_id"]: row for row in csv.DictReader(fh)}


def table_row(out: str, label: str) -> tuple[int, float | None]:
    """Patients and cards per 1,000 screened (None on the errors row) of one summary row."""
    match = re.search(rf"^{re.escape(label)}\s+(\d+)(?:\s+([\d.]+))?$", out, re.MULTILINE)
    assert match, f"no row {label!r} in:\n{out}"
    return int(match.group(1)), float(match.group(2)) if match.group(2) else None


def table_count(out: str, label: str) -> int:
    return table_row(out, label)[0]


def test_patients_to_csv_with_one_unknown(cli_server, tmp_path, capsys):
    out_file = tmp_path / "results.csv"
    code, out, err = run(
        capsys,
        "screen",
        "--fhir-server",
        cli_server.base_url,
        f"--token={cli_server.token}",
        "--patients",
        f"{PORK},{EMPTY},{UNKNOWN}",
        "--out",
        str(out_file),
    )

    # One patient could not be screened: exit 1, but every row is written.
    assert code == 1
    assert err == ""  # stderr is not a terminal here: no progress bar
    with open(out_file, encoding="utf-8") as fh:
        assert fh.readline() == "patient_id,rule_ids,summaries,error\n"
    rows = read_csv(out_file)
    assert list(rows) == [PORK, EMPTY, UNKNOWN]
    assert rows[PORK] == {
        "patient_id": PORK,
        "rule_ids": "animal-insulin-switch",
        "summaries": PORK_SUMMARY,
        "error": "",
    }
    assert rows[EMPTY] == {"patient_id": EMPTY, "rule_ids": "", "summaries": "", "error": ""}
    assert rows[UNKNOWN]["error"] == f"no patient '{UNKNOWN}' on {cli_server.base_url}"
    assert rows[UNKNOWN]["rule_ids"] == ""

    assert out.startswith(
        f"Screened 3 patients on {cli_server.base_url}: 1 with cards, 1 without cards, 1 error.\n"
    )
    assert table_count(out, "animal-insulin-switch") == 1
    assert table_count(out, "type-b-insulin-resistance") == 0
    assert table_count(out, "(errors)") == 1
    assert f"  {UNKNOWN}: no patient '{UNKNOWN}' on {cli_server.base_url}" in out.splitlines()
    assert out.rstrip().endswith(f"Results for 3 patients written to {out_file}")
    assert cli_server.token not in out + out_file.read_text()


def test_patients_to_json(cli_server, tmp_path, capsys):
    out_file = tmp_path / "results.json"
    code, _, _ = run(
        capsys,
        "screen",
        "--fhir-server",
        cli_server.base_url,
        f"--token={cli_server.token}",
        "--patients",
        f"{EMPTY},{PORK}",
        "--out",
        str(out_file),
        "--now",
        "2026-06-01T12:00:00Z",
        "--concurrency",
        "1",
    )

    assert code == 0
    data = json.loads(out_file.read_text())
    assert data["fhir_server"] == cli_server.base_url
    assert data["evaluated_at"] == "2026-06-01T12:00:00+00:00"
    assert data["patients"] == [
        {"patient_id": EMPTY, "rule_ids": [], "summaries": [], "error": None},
        {
            "patient_id": PORK,
            "rule_ids": ["animal-insulin-switch"],
            "summaries": [PORK_SUMMARY],
            "error": None,
        },
    ]


def test_without_out_the_patients_with_cards_are_listed(cli_server, capsys):
    code, out, _ = run(
        capsys,
        "screen",
        "--fhir-server",
        cli_server.base_url,
        f"--token={cli_server.token}",
        "--patients",
        f"{PORK},{EMPTY}",
    )
    assert code == 0
    assert out.splitlines()[-2:] == ["Patients with cards:", f"  {PORK}: animal-insulin-switch"]


def test_all_patients_on_the_open_server(open_cli_server, tmp_path, capsys, monkeypatch):
    """--all lists every Patient, following next links (a page size of 1 forces paging)."""
    monkeypatch.setattr(cli_screen, "LIST_PAGE_SIZE", 1)
    out_file = tmp_path / "all.csv"

    code, out, _ = run(
        capsys, "screen", "--fhir-server", open_cli_server.base_url, "--all", "--out", str(out_file)
    )

    rows = read_csv(out_file)  # the server is shared: other tests' patients may be there too
    assert rows[OPEN_PORK]["rule_ids"] == "animal-insulin-switch"
    assert rows[OPEN_PORK]["summaries"] == PORK_SUMMARY
    assert rows[OPEN_EMPTY] == {"patient_id": OPEN_EMPTY, "rule_ids": "", "summaries": "", "error": ""}
    assert code == (1 if any(row["error"] for row in rows.values()) else 0)
    assert out.startswith(f"Screened {len(rows)} patients on {open_cli_server.base_url}: ")
    assert table_count(out, "animal-insulin-switch") >= 1


def test_all_with_a_wrong_token_stops_with_the_refusal(cli_server, tmp_path, capsys):
    out_file = tmp_path / "all.csv"
    code, out, err = run(
        capsys,
        "screen",
        "--fhir-server",
        cli_server.base_url,
        "--all",
        "--token=wrong-token-xyz",
        "--out",
        str(out_file),
    )
    assert (code, out) == (1, "")
    assert err == (
        "cds-hooks: listing the patients failed: the FHIR server refused the token (HTTP 401) at "
        f"{cli_server.base_url}: check --token\n"
    )
    assert "wrong-token-xyz" not in err
    assert not out_file.exists()


def test_patients_with_a_wrong_token_stop_at_the_first_refusal(cli_server, tmp_path, capsys):
    """A refused token is not recorded once per patient: the run stops and no file is written."""
    out_file = tmp_path / "r.csv"
    ids = ",".join(f"cli-many-{i}" for i in range(20))
    code, out, err = run(
        capsys,
        "screen",
        "--fhir-server",
        cli_server.base_url,
        "--patients",
        ids,
        "--token=wrong-token-xyz",
        "--out",
        str(out_file),
    )
    assert (code, out) == (1, "")
    assert err == (
        f"cds-hooks: the FHIR server refused the token (HTTP 401) at {cli_server.base_url}: check --token\n"
    )
    assert not out_file.exists()


def test_unreachable_server(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/fhir"
    code, out, err = run(capsys, "screen", "--fhir-server", url, "--all")
    assert (code, out) == (1, "")
    assert err == (
        f"cds-hooks: the FHIR server at {url} could not be reached: "
        "check the URL and that the server is running\n"
    )


def test_an_unexpected_failure_is_one_row_not_the_end_of_the_run(cli_server, tmp_path, capsys, monkeypatch):
    original = Evaluator.patient

    def patient(self, server, token, patient_id, resource=None):
        if patient_id == EMPTY:
            raise ValueError("odd record")
        return original(self, server, token, patient_id, resource)

    monkeypatch.setattr(Evaluator, "patient", patient)
    out_file = tmp_path / "r.csv"
    code, _, _ = run(
        capsys,
        "screen",
        "--fhir-server",
        cli_server.base_url,
        f"--token={cli_server.token}",
        "--patients",
        f"{EMPTY},{PORK}",
        "--out",
        str(out_file),
    )
    rows = read_csv(out_file)
    assert code == 1
    assert rows[EMPTY]["error"] == "unexpected error: ValueError: odd record"
    assert rows[PORK]["rule_ids"] == "animal-insulin-switch"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--all", "--out", "results.txt"], "--out must end in .csv or .json"),
        (["--all", "--out", "/no/such/dir/r.csv"], "the folder '/no/such/dir' does not exist"),
        (["--patients", " , "], "give at least one patient id"),
        (["--all", "--concurrency", "0"], "must be a whole number from 1 to 64"),
        (["--all", "--patients", "p1"], "not allowed with argument"),
        ([], "one of the arguments --patients --all is required"),
    ],
)
def test_usage_errors_exit_2(extra, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["screen", "--fhir-server", "http://127.0.0.1:9/fhir", *extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------- the progress bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal():
    stream = Terminal()
    progress = Progress(4, stream)
    progress.start()
    for failed in (False, True, False, False):
        progress.advance(failed)
    drawn = stream.getvalue()
    progress.close()

    assert "screening" in drawn and "0/4" in drawn and "4/4" in drawn
    assert "1 error" in drawn and "2 errors" not in drawn
    assert stream.getvalue().endswith("\r")  # cleared for the summary (leave=False)


def test_no_progress_output_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(2, stream)
    progress.advance(False)
    progress.advance(True)
    progress.close()
    assert stream.getvalue() == ""


def test_a_412_for_one_patient_is_recorded_and_the_run_goes_on(tmp_path, capsys):
    """A server that fails the Observation search for one patient: that row carries the service's 412
    text naming the keys; the other patient is evaluated."""

    def answer(path: str, headers: dict[str, str]) -> tuple[int, object]:
        if path.endswith("/metadata"):
            return 200, {"resourceType": "CapabilityStatement"}
        if "/Patient/" in path:
            return 200, {"resourceType": "Patient", "id": path.rsplit("/", 1)[1]}
        if path.split("?")[0].endswith("/Observation") and "patient=cli-fails" in path:
            return 500, {"resourceType": "OperationOutcome"}
        return 200, {"resourceType": "Bundle", "type": "searchset", "entry": []}

    out_file = tmp_path / "r.csv"
    with misbehaving_server(answer) as (url, _):
        code, out, _ = run(
            capsys, "screen", "--fhir-server", url, "--patients", "cli-fails,cli-fine", "--out", str(out_file)
        )

    rows = read_csv(out_file)
    assert code == 1
    assert rows["cli-fine"] == {"patient_id": "cli-fine", "rule_ids": "", "summaries": "", "error": ""}
    # The error names each search that failed, as sent (date-bounded), and what the server answered.
    error = rows["cli-fails"]["error"]
    assert error.startswith(
        f"reading from {url} failed: the labResults search (Observation?patient=cli-fails&category=laboratory"
    )
    answered = r"&date=ge\d{4}-\d{2}-\d{2}\): the FHIR server answered HTTP 500; the observations search"
    assert re.search(answered, error)
    assert table_count(out, "(errors)") == 1

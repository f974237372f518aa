"""Issue 16.4: a screen that survives a slow server (back-off, stop) and skips the deceased."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from cds_hooks.cli.main import main
from cds_hooks.cli.screen import Backoff, is_deceased
from cds_hooks.testing.fhir_test_server import LocalFhirServer
from tests.builders import patient, porcine_statement, transaction
from tests.misbehaving_server import misbehaving_server

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


# ------------------------------------------------------------------------------- back-off at its edges


def test_backoff_halves_every_second_timeout_in_a_row_and_stops_at_the_limit():
    backoff = Backoff(workers=8, stop_after=6)
    seen = []
    for _ in range(6):
        assert not backoff.stopped
        backoff.record(timed_out=True)
        seen.append(backoff.workers)
    assert seen == [8, 4, 4, 2, 2, 2]  # the sixth stops the screen: no point halving then
    assert backoff.stopped and backoff.in_a_row == 6


def test_backoff_one_short_of_the_limit_then_an_answer_resets_the_count():
    backoff = Backoff(workers=4, stop_after=3)
    backoff.record(timed_out=True)
    backoff.record(timed_out=True)
    assert (backoff.workers, backoff.stopped) == (2, False)
    backoff.record(timed_out=False)  # an answered patient: the server is keeping up again
    backoff.record(timed_out=True)
    backoff.record(timed_out=True)
    assert not backoff.stopped and backoff.in_a_row == 2
    assert backoff.workers == 1  # the pool stays reduced; it never drops below one
    backoff.record(timed_out=True)
    assert backoff.stopped


def test_backoff_never_below_one_worker():
    backoff = Backoff(workers=1, stop_after=100)
    for _ in range(10):
        backoff.record(timed_out=True)
    assert backoff.workers == 1 and backoff.events == []


def test_screen_backs_off_then_stops_with_a_clear_message_and_exit_1(monkeypatch, tmp_path, capsys):
    """Every Observation search outlasts the read timeout. With 4 workers and a limit of 5 timeouts in
    a row: 4 → 2 → 1 workers, then the fifth stops the screen; the rest is recorded as not screened."""
    monkeypatch.setenv("CDS_HOOKS_FHIR_READ_TIMEOUT", "0.3")
    monkeypatch.setenv("CDS_HOOKS_FHIR_RETRIES", "0")

    def answer(path: str, headers: dict[str, str]):
        if path.endswith("/metadata"):
            return 200, {"resourceType": "CapabilityStatement"}
        if "/Patient/" in path:
            return 200, {"resourceType": "Patient", "id": path.rsplit("/", 1)[1]}
        if "/Observation?" in path:
            # Headers at once, then a body that stalls past the read timeout.
            return 200, lambda out: (time.sleep(1.0), out.write(b"{}"))
        return 200, {"resourceType": "Bundle", "type": "searchset", "entry": []}

    ids = [f"slow-{i:02d}" for i in range(12)]
    out_file = tmp_path / "r.csv"
    with misbehaving_server(answer) as (url, recorder):
        code = main(
            [
                *("screen", "--fhir-server", url, "--patients", ",".join(ids), "--concurrency", "4"),
                *("--stop-after-timeouts", "5", "--out", str(out_file)),
            ]
        )
    captured = capsys.readouterr()
    assert code == 1
    assert "cds-hooks: 2 timeouts in a row: down to 2 patients at once" in captured.err
    assert "cds-hooks: 4 timeouts in a row: down to 1 patient at once" in captured.err
    assert f"cds-hooks: stopped after 5 timeouts in a row: the FHIR server at {url} is not keeping up" in (
        captured.err
    )
    rows = out_file.read_text().splitlines()[1:]
    timed_out = [r for r in rows if "CDS_HOOKS_FHIR_READ_TIMEOUT raises the limit" in r]
    not_screened = [r for r in rows if r.endswith("not screened: the screen stopped (timeouts)")]
    assert len(timed_out) == 5 and len(not_screened) == len(ids) - 5  # no more patients were sent
    # Each timeout names the search that failed and the setting that governs it.
    assert all("the labResults search (Observation?patient=slow-" in r for r in timed_out)
    started = {p.split("patient=")[1].split("&")[0] for p in recorder.paths if "/Observation?" in p}
    assert len(started) <= len(ids) - len(not_screened)


def test_total_timeout_below_the_read_timeout_is_the_setting_named(monkeypatch, capsys):
    """The cap is CDS_HOOKS_FHIR_TOTAL_TIMEOUT when it is the smaller one (issue 16: the message used to
    point at the read timeout, which could not help)."""
    monkeypatch.setenv("CDS_HOOKS_FHIR_READ_TIMEOUT", "300")
    monkeypatch.setenv("CDS_HOOKS_FHIR_TOTAL_TIMEOUT", "0.4")
    monkeypatch.setenv("CDS_HOOKS_FHIR_RETRIES", "0")
    with misbehaving_server(lambda p, h: (200, {"resourceType": "CapabilityStatement"}), delay=1.5) as (
        url,
        _,
    ):
        code = main(["evaluate", "--fhir-server", url, "--patient", "p1"])
    err = capsys.readouterr().err
    assert code == 1
    assert "did not answer within 0.4 s" in err
    assert "CDS_HOOKS_FHIR_TOTAL_TIMEOUT raises the limit" in err and "READ_TIMEOUT" not in err


# ------------------------------------------------------------------------------- deceased at its edges


@pytest.mark.parametrize(
    ("fields", "deceased"),
    [
        ({}, False),
        ({"deceasedBoolean": False}, False),
        ({"deceasedBoolean": True}, True),
        ({"deceasedDateTime": "2026-12-01T11:59:59Z"}, True),  # a second before "now"
        ({"deceasedDateTime": "2026-12-01T12:00:00Z"}, True),  # at "now"
        ({"deceasedDateTime": "2026-12-02"}, False),  # after "now": alive at the evaluation time
        ({"deceasedDateTime": "not a date"}, True),  # recorded as dead, date unreadable
    ],
)
def test_deceased_edges(fields, deceased):
    assert is_deceased({"resourceType": "Patient", "id": "p", **fields}, NOW) is deceased


@pytest.fixture(scope="module")
def deceased_server(fhir_server: LocalFhirServer) -> LocalFhirServer:
    dead = {**patient("bo-dead"), "deceasedDateTime": "2024-03-01"}
    fhir_server.load_bundle(
        transaction(dead, porcine_statement("bo-dead", "bo-dead-ms"), patient("bo-alive"))
    )
    return fhir_server


def test_deceased_patient_skipped_unless_included(deceased_server, capsys, tmp_path):
    base = ["screen", "--fhir-server", deceased_server.base_url, f"--token={deceased_server.token}"]
    base += ["--patients", "bo-dead,bo-alive", "--now", "2026-06-01"]
    assert main([*base, "--out", str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Screened 1 patient on {deceased_server.base_url}: 0 with cards, 1 without")
    assert "1 deceased patient skipped (--include-deceased screens them)." in out
    assert '"bo-dead"' not in (tmp_path / "a.json").read_text()

    assert main([*base, "--include-deceased", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert '"patient_id": "bo-dead"' in captured.out  # results on stdout, summary on stderr
    assert '"rule_ids": [\n        "animal-insulin-switch"' in captured.out
    assert captured.err.startswith(f"Screened 2 patients on {deceased_server.base_url}: 1 with cards")


def test_format_option_overrides_the_extension(deceased_server, capsys, tmp_path):
    target = tmp_path / "results.txt"
    argv = ["screen", "--fhir-server", deceased_server.base_url, f"--token={deceased_server.token}"]
    argv += ["--patients", "bo-alive", "--out", str(target), "--format", "csv"]
    assert main(argv) == 0
    assert target.read_text().startswith("patient_id,rule_ids,summaries,error\n")
    with pytest.raises(SystemExit):
        main([*argv[:-2]])  # .txt without --format: a usage error
    assert "--out must end in .csv or .json (or give --format)" in capsys.readouterr().err

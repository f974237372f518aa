"""``cds-hooks export`` against real Bulk Data endpoints: the project's FHIR test server (sekmet-fhir, its
``Group/$export``: a 202 poll, then the manifest) and a small range-capable server (tests/bulk/bulk_server.py)
whose first download is cut off mid-file and resumed with ``Range``. No Spark here."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cds_hooks.bulk.export import SCREEN_TYPES, ExportClient, ExportFailed, export, retry_after
from cds_hooks.bulk.ndjson import observations_bound
from cds_hooks.cli.main import main
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.hooks.registry import lookback_days
from cds_hooks.testing.fhir_test_server import LocalFhirServer
from tests.bulk.bulk_server import bulk_server


def _ids(directory: Path) -> set[tuple[str, str]]:
    ids = set()
    for path in directory.glob("*.ndjson"):
        for line in path.read_text().splitlines():
            resource = json.loads(line)
            ids.add((resource["resourceType"], resource["id"]))
    return ids


def test_group_export_from_the_fhir_test_server_polls_then_downloads(fhir_server: LocalFhirServer, tmp_path):
    patient = {"resourceType": "Patient", "id": "bulk-exp-1"}
    glucose = {
        "resourceType": "Observation", "id": "bulk-exp-o1", "status": "final",
        "subject": {"reference": "Patient/bulk-exp-1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "effectiveDateTime": "2026-11-20T08:00:00Z", "valueQuantity": {"value": 250, "unit": "mg/dL"},
    }  # fmt: skip
    for resource in (patient, glucose):
        fhir_server.put(resource)
    fhir_server.put({"resourceType": "Group", "id": "bulk-exp", "type": "person", "actual": True,
                     "member": [{"entity": {"reference": "Patient/bulk-exp-1"}}]})  # fmt: skip
    polls: list[str] = []
    client = ExportClient(base=fhir_server.base_url, token=fhir_server.token)
    files = export(client, tmp_path / "out", group="bulk-exp", on_progress=polls.append)
    assert polls, "the server answered 202 at least once before the manifest"
    assert _ids(tmp_path / "out") == {("Patient", "bulk-exp-1"), ("Observation", "bulk-exp-o1")}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sorted(o["url"] for o in manifest["output"]) == sorted(f.name for f in files)
    assert all(o["sourceUrl"].startswith(fhir_server.base_url) for o in manifest["output"])


def test_an_interrupted_download_resumes_with_range(tmp_path, examples_export, capsys):
    token = secrets.token_urlsafe(16)
    plain = tmp_path / "served"
    plain.mkdir()
    for path in examples_export.glob("*.ndjson"):  # the plain (not gzip) files
        (plain / path.name).write_bytes(path.read_bytes())
    sizes = {p.name.split(".")[0]: p.stat().st_size for p in plain.iterdir()}
    out = tmp_path / "out"
    with bulk_server(plain, token, polls=2, retry_after="0.2", cut_after=1000) as server:
        args = [
            "export",
            "--fhir-server",
            server.base_url,
            f"--token={token}",
            "--group",
            "g1",
            "--out",
            str(out),
        ]
        assert main(args) == 1
        assert "broke off (ProtocolError); run the same command again to resume" in capsys.readouterr().err
        partial = next(out.glob("*.part"))
        assert partial.stat().st_size == 1000
        assert main(args) == 0, capsys.readouterr().err
    assert len(server.kickoffs) == 1  # the second run continued the same export
    kickoff = server.kickoffs[0]
    assert kickoff["group"] == "g1" and kickoff["_type"] == [",".join(SCREEN_TYPES)]
    # the default _typeFilter: the screen's own window on Observations, nothing else
    day = (datetime.now(UTC) - timedelta(days=lookback_days(default_knowledge()) + 1)).date().isoformat()
    assert kickoff["_typeFilter"] == [f"Observation?date=ge{day}"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert observations_bound(manifest["kickOff"]) == day
    assert server.status_calls == 4  # 2 × 202 then the manifest, and the manifest again on the second run
    assert "bytes=1000-" in server.ranges
    got = {p.name.rsplit("-", 1)[0]: p.stat().st_size for p in out.glob("*.ndjson")}
    assert got == sizes
    assert _ids(out) == _ids(plain)
    assert not list(out.glob("*.part"))


def test_a_refused_token_is_reported_without_it(tmp_path, examples_export):
    with bulk_server(examples_export, "right-token") as server:
        client = ExportClient(base=server.base_url, token="wrong-token-123")
        with pytest.raises(ExportFailed) as failure:
            export(client, tmp_path / "out")
    assert "answered HTTP 401" in str(failure.value) and "wrong-token-123" not in str(failure.value)


@pytest.mark.parametrize(
    ("header", "seconds"), [("3", 3.0), (None, 2.0), ("nonsense", 2.0), ("100000", 120.0)]
)
def test_retry_after(header, seconds):
    assert retry_after(header) == seconds


@pytest.mark.parametrize(
    ("options", "sent"),
    [
        (["--no-type-filter"], None),
        (["--type-filter", "Observation?category=laboratory"], ["Observation?category=laboratory"]),
        (["--types", "Patient,Condition"], None),
    ],
)
def test_the_type_filter_can_be_replaced_or_left_out(tmp_path, examples_export, options, sent):
    with bulk_server(examples_export, "t0k") as server:
        args = ["export", "--fhir-server", server.base_url, "--token=t0k", "--out", str(tmp_path / "o")]
        assert main([*args, *options]) == 0
    assert server.kickoffs[0].get("_typeFilter") == sent


def test_type_filter_and_no_type_filter_exclude_each_other(tmp_path, capsys):
    args = ["export", "--fhir-server", "http://127.0.0.1:9/fhir", "--out", str(tmp_path)]
    with pytest.raises(SystemExit):
        main([*args, "--no-type-filter", "--type-filter", "Observation?code=x"])
    assert "exclude each other" in capsys.readouterr().err

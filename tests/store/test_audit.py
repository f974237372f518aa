"""The audit trail (issue 11 item 6): one FHIR AuditEvent per service and feedback call, in the
database, a JSON-lines file or off; retention; ``cds-hooks audit export``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cds_hooks.app import create_app
from cds_hooks.cli.main import main
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.store.audit import PSEUDONYM_SYSTEM, AuditRecord, audit_event
from cds_hooks.store.database import Store, audit_table
from tests.builders import SERVICE, SERVICE_URL, porcine_request
from tests.conftest import make_settings

FEEDBACK_URL = SERVICE_URL + "/feedback"


def _events(app) -> list[dict[str, Any]]:
    rt = app.extensions["cds_hooks"]
    rt.recorder.flush()
    return [json.loads(e) for e in rt.store.audit_events()]


def _entity(event: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [e for e in event["entity"] if e["role"]["display"] == role]


def test_a_service_call_leaves_one_audit_event_with_pseudonym_rules_and_outcome(client, app):
    body = porcine_request("audit-patient-1")
    r = client.post(SERVICE_URL, json=body)
    assert r.status_code == 200
    (event,) = _events(app)
    assert event["resourceType"] == "AuditEvent"
    assert event["type"]["code"] == "rest" and event["action"] == "E" and event["outcome"] == "0"
    assert event["subtype"][0]["code"] == "operation"
    client_agent, server_agent = event["agent"]
    assert client_agent["requestor"] is True and server_agent["requestor"] is False
    assert server_agent["who"]["identifier"]["value"] == SERVICE
    (patient,) = _entity(event, "Patient")
    pseudonym = app.extensions["cds_hooks"].pipeline.pseudonyms.patient("audit-patient-1")
    assert patient["what"]["identifier"] == {"system": PSEUDONYM_SYSTEM, "value": pseudonym}
    (call,) = _entity(event, "Report")
    assert call["what"]["identifier"]["value"] == body["hookInstance"]
    details = {d["type"]: d["valueString"] for d in call["detail"]}
    assert details["hook"] == "patient-view"
    assert details["rules"].split() == [c["source"]["topic"]["code"] for c in r.get_json()["cards"]]
    assert "audit-patient-1" not in json.dumps(event)


def test_feedback_and_refused_calls_are_audited_too(client, app):
    card = client.post(SERVICE_URL, json=porcine_request("audit-patient-2")).get_json()["cards"][0]
    item = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-27T10:05:31Z",
        "overrideReason": {"userComment": "seen"},
    }
    assert client.post(FEEDBACK_URL, json={"feedback": [item]}).status_code == 200
    assert client.post(SERVICE_URL, data="{", content_type="application/json").status_code == 400
    assert client.get("/cds-services").status_code == 200  # discovery is not audited
    service, feedback, refused = _events(app)
    assert feedback["action"] == "C" and feedback["subtype"][0]["code"] == "create"
    assert _entity(feedback, "Patient") == _entity(service, "Patient")
    details = {d["type"]: d["valueString"] for d in _entity(feedback, "Report")[0]["detail"]}
    assert details["feedback-outcomes"] == "overridden"
    assert details["rules"] == card["source"]["topic"]["code"]
    assert refused["outcome"] == "4" and refused["outcomeDesc"] == "HTTP 400"
    assert not _entity(refused, "Patient")


def test_audit_to_a_file_writes_json_lines_and_nothing_to_the_database(tmp_path: Path):
    path = tmp_path / "audit" / "events.ndjson"
    app = create_app(make_settings(tmp_path, audit=f"file:{path}"), knowledge=default_knowledge())
    client = app.test_client()
    for n in range(3):
        assert client.post(SERVICE_URL, json=porcine_request(f"file-{n}")).status_code == 200
    rt = app.extensions["cds_hooks"]
    rt.recorder.flush()
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    assert all(json.loads(line)["resourceType"] == "AuditEvent" for line in lines)
    assert list(rt.store.audit_events()) == []
    rt.store.dispose()


def test_audit_off_records_nothing(tmp_path: Path):
    app = create_app(make_settings(tmp_path, audit="off"), knowledge=default_knowledge())
    assert app.test_client().post(SERVICE_URL, json=porcine_request()).status_code == 200
    assert _events(app) == []
    app.extensions["cds_hooks"].store.dispose()


def test_an_unknown_audit_setting_is_a_configuration_error(tmp_path: Path):
    from cds_hooks.process.config import ConfigError

    with pytest.raises(ConfigError, match="AUDIT"):
        make_settings(tmp_path, audit="syslog")


def _record(when: datetime) -> dict[str, Any]:
    return audit_event(
        AuditRecord(kind="service", recorded=when, service_id=SERVICE, hook="patient-view", status=200)
    )


def test_retention_prunes_old_rows_only(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    store.write_audit_events([_record(now - timedelta(days=d)) for d in (400, 366, 364, 1)])
    assert store.prune_audit(0, now) == 0  # 0 keeps everything
    assert store.prune_audit(365, now) == 2
    with store.engine.connect() as conn:
        kept = sorted(r.recorded for r in conn.execute(audit_table.select()))
    assert len(kept) == 2
    store.dispose()


def test_cli_audit_export_prints_ndjson_since_a_date(tmp_path: Path, monkeypatch, capsys):
    data = tmp_path / "data"
    store = Store(f"sqlite:///{data / 'cds-hooks.sqlite3'}")
    store.write_audit_events([_record(datetime(2026, 11, d, tzinfo=UTC)) for d in (1, 10, 20)])
    store.dispose()
    for name in [k for k in __import__("os").environ if k.startswith("CDS_HOOKS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CDS_HOOKS_DATA_DIR", str(data))
    assert main(["audit", "export", "--since", "2026-11-10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["recorded"][:10] for line in lines] == ["2026-11-10", "2026-11-20"]
    assert main(["audit", "export", "--since", "last tuesday"]) == 2
    assert main(["audit", "export"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3

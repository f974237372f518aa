"""The README's run command, for real: `cds-hooks serve` under gunicorn, called over HTTP like curl."""

from __future__ import annotations

import requests

from tests.builders import SERVICE_URL, empty_prefetch, porcine_request, request, topics
from tests.durability.service import ServiceProcess


def test_serve_answers_discovery_a_card_and_no_cards(tmp_path):
    service = ServiceProcess(tmp_path, {"CDS_HOOKS_DATA_DIR": str(tmp_path / "data")}, workers=1)
    service.start()
    try:
        base = service.base_url
        services = requests.get(f"{base}/cds-services", timeout=5).json()["services"]
        assert "immune-insulin-resistance" in [s["id"] for s in services]
        card = requests.post(base + SERVICE_URL, json=porcine_request(), timeout=5)
        assert card.status_code == 200 and topics(card.json()) == ["animal-insulin-switch"]
        # No sign of antibody-mediated resistance: an info card (issue 14 item 4).
        assert card.json()["cards"][0]["indicator"] == "info"
        empty = requests.post(base + SERVICE_URL, json=request("e", empty_prefetch("e")), timeout=5)
        assert empty.json() == {"cards": []}
        assert (tmp_path / "data" / "cds-hooks.sqlite3").exists()  # data dir created on first start
    finally:
        service.stop()

"""The README's run command, for real: `cds-hooks serve` under gunicorn, called over HTTP like curl."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests

from cds_hooks.local_fhir_server import free_port
from tests.builders import SERVICE_URL, empty_prefetch, porcine_request, request, topics


def test_serve_answers_discovery_a_card_and_no_cards(tmp_path):
    port = free_port()
    env = {**os.environ, "CDS_HOOKS_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cds_hooks",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "service did not start"
            time.sleep(0.2)
        services = requests.get(f"{base}/cds-services", timeout=5).json()["services"]
        assert "immune-insulin-resistance" in [s["id"] for s in services]
        card = requests.post(base + SERVICE_URL, json=porcine_request(), timeout=5)
        assert card.status_code == 200 and topics(card.json()) == ["animal-insulin-switch"]
        assert card.json()["cards"][0]["indicator"] == "warning"
        empty = requests.post(base + SERVICE_URL, json=request("e", empty_prefetch("e")), timeout=5)
        assert empty.json() == {"cards": []}
        assert (tmp_path / "data" / "cds-hooks.sqlite3").exists()  # data dir created on first start
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

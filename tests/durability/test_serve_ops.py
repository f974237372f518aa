"""`cds-hooks serve` operations (issue 11 items 2, 5, 7): a 413 that reaches a client writing its whole
body first, metrics summed over gunicorn workers, and two instances side by side on one host."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.builders import SERVICE, SERVICE_URL, porcine_request
from tests.durability.conftest import ServiceFactory

LIMIT = 1024 * 1024
# Under the 4 × limit the service reads and drops, and over what loopback socket buffers absorb (~3 MiB):
# a service that answered without reading the body would reset the connection under the client.
OVERSIZE = int(3.9 * LIMIT)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A data directory with a short path: a Unix socket path must fit in 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="cds-ops-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _oversized_body(size: int) -> bytes:
    return b'{"hook": "patient-view", "pad": "' + b"x" * size + b'"}'


def test_413_reaches_a_client_that_sends_the_whole_body_before_reading(
    services: ServiceFactory, tmp_path: Path
):
    service = services(
        {"CDS_HOOKS_DATA_DIR": str(tmp_path / "data"), "CDS_HOOKS_MAX_BODY_BYTES": str(LIMIT)}
    ).start()
    # urllib sends the whole body (with Content-Length and Connection: close) before it reads.
    request = urllib.request.Request(
        service.base_url + SERVICE_URL,
        data=_oversized_body(OVERSIZE),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    outcome = json.loads(refused.value.read())
    assert outcome["resourceType"] == "OperationOutcome"
    assert str(LIMIT) in outcome["issue"][0]["diagnostics"]

    # The same with a chunked body on a raw socket: everything written, then the answer read.
    body = _oversized_body(OVERSIZE)
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        sock.sendall(
            f"POST {SERVICE_URL} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        )
        for start in range(0, len(body), 65536):
            chunk = body[start : start + 65536]
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        answer = b""
        while data := sock.recv(65536):
            answer += data
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"OperationOutcome" in answer
    assert requests.get(service.base_url + "/healthz", timeout=10).status_code == 200


def _total(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_metrics_sum_over_all_gunicorn_workers(services: ServiceFactory, short_dir: Path):
    service = services(
        {"CDS_HOOKS_DATA_DIR": str(short_dir), "CDS_HOOKS_METRICS": "true", "CDS_HOOKS_METRICS_TOKEN": "tok"},
        workers=2,
        threads=1,
    ).start()
    calls = 24
    for n in range(calls):  # a new connection each: gunicorn spreads them over both workers
        assert requests.post(service.base_url + SERVICE_URL, json=porcine_request(f"w{n}"), timeout=30).ok
    files = list(short_dir.glob("metrics-*/*.db"))
    assert files, "no multiprocess metric files"
    totals = set()
    for _ in range(6):  # each scrape may land on either worker; every one sees the sum
        r = requests.get(service.base_url + "/metrics", headers={"Authorization": "Bearer tok"}, timeout=10)
        assert r.status_code == 200
        totals.add(
            _total(r.text, "cds_hooks_requests_total", endpoint="service", service=SERVICE, status="200")
        )
    assert totals == {calls}
    assert requests.get(service.base_url + "/metrics", timeout=10).status_code == 401


def test_two_instances_run_side_by_side_with_their_own_control_sockets(
    services: ServiceFactory, short_dir: Path, tmp_path: Path
):
    """Same host, same user, same data directory: each instance has its control socket, by port, under
    the data directory; gunicorn's shared default path in the home directory is not used."""
    home = tmp_path / "home"
    env = {"CDS_HOOKS_DATA_DIR": str(short_dir), "HOME": str(home), "XDG_RUNTIME_DIR": ""}
    a = services(env, name="a").launch()
    b = services(env, name="b").launch()
    a.wait_ready()
    b.wait_ready()
    sockets = {p.name for p in short_dir.glob("gunicorn-*.ctl")}
    assert sockets == {f"gunicorn-{a.port}.ctl", f"gunicorn-{b.port}.ctl"}
    assert not (home / ".gunicorn").exists()
    a.stop()
    assert (short_dir / f"gunicorn-{b.port}.ctl").exists(), "stopping one instance removed the other's socket"
    assert requests.get(b.base_url + "/healthz", timeout=10).status_code == 200


def test_the_control_socket_can_be_disabled(services: ServiceFactory, short_dir: Path, tmp_path: Path):
    env = {"CDS_HOOKS_DATA_DIR": str(short_dir), "CDS_HOOKS_CONTROL_SOCKET": "off", "HOME": str(tmp_path)}
    services(env).start()
    assert not list(short_dir.glob("*.ctl"))
    assert not (tmp_path / ".gunicorn").exists()

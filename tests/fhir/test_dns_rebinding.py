"""Issue 11.4: DNS rebinding between the target check and the connection is closed.

A rebinding DNS answers a public address to the policy check and loopback to every later lookup. The
client must connect to the checked address (pinned), never look the name up again, and so never reach
the loopback server. The public address is not contacted either: connections to it are refused in
process (the test machine has no route out), which is what the pinned client reports."""

from __future__ import annotations

import socket

import pytest
import requests
import urllib3.util.connection

from cds_hooks.fhir.client import (
    PINNED_NAME_HEADER,
    FhirClient,
    FhirUnavailable,
    PinnedAddressAdapter,
    build_session,
)
from cds_hooks.fhir.target_policy import FhirPolicy
from tests.misbehaving_server import misbehaving_server

NAME = "fhir.rebind.test"
PUBLIC = "93.184.216.34"


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch):
    """Lookups of NAME: public first, loopback after; connections to PUBLIC refused and recorded."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = urllib3.util.connection.create_connection
    lookups: list[str] = []
    connections: list[tuple[str, int]] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != NAME:
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        address = PUBLIC if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port or 0))]

    def create_connection(address, *args, **kwargs):
        connections.append(address)
        if address[0] == PUBLIC:
            raise ConnectionRefusedError("no route to the public test address")
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return lookups, connections


def test_x1_rebinding_to_loopback_never_reaches_it(rebinding):
    lookups, connections = rebinding
    with misbehaving_server(lambda path, headers: (200, {"resourceType": "CapabilityStatement"})) as (
        url,
        recorder,
    ):
        port = int(url.split(":")[2].split("/")[0])
        client = FhirClient(f"http://{NAME}:{port}/fhir", build_session(retries=0), policy=FhirPolicy())
        with pytest.raises(FhirUnavailable, match="could not be reached"):
            client.get_json("metadata")
        assert lookups == [NAME]  # the check's lookup only: the connection did not resolve the name again
        assert connections == [(PUBLIC, port)]  # to the checked address
        assert recorder.paths == []  # the loopback server was never contacted

        # The control: an unpinned client, same DNS, does reach the loopback server. The test can fail.
        assert requests.get(f"http://{NAME}:{port}/fhir/metadata", timeout=5).status_code == 200
        assert recorder.paths == ["/fhir/metadata"]


def test_pinned_https_keeps_the_name_for_sni_and_certificate_checks():
    adapter = PinnedAddressAdapter()
    request = requests.Request(
        "GET", f"https://{PUBLIC}/fhir/metadata", headers={"Host": NAME, PINNED_NAME_HEADER: NAME}
    ).prepare()
    host, pool = adapter.build_connection_pool_key_attributes(request, verify=True)
    assert host["host"] == PUBLIC
    assert pool["server_hostname"] == NAME and pool["assert_hostname"] == NAME
    adapter.add_headers(request)
    assert PINNED_NAME_HEADER not in request.headers and request.headers["Host"] == NAME

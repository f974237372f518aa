"""Key pairs, token builders and a local JWK Set server for the JWT tests (no network beyond loopback)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.builders import SERVICE

ISS = "https://ehr.example.org"
BASE = "http://localhost"
DISCOVERY_PATH = "/cds-services"
SERVICE_PATH = f"/cds-services/{SERVICE}"
FEEDBACK_PATH = f"/cds-services/{SERVICE}/feedback"
DISCOVERY_AUD = BASE + DISCOVERY_PATH
SERVICE_AUD = BASE + SERVICE_PATH
FEEDBACK_AUD = BASE + FEEDBACK_PATH

SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"

DROP = object()  # a claim or header value meaning "leave this member out"


@dataclass
class KeyPair:
    """A private key, its algorithm and kid; ``public_jwk()`` is what a trusted-issuers file holds."""

    kid: str
    alg: str
    private: Any
    declare_alg: bool = True

    def public_jwk(self, kid: str | None = None) -> dict[str, Any]:
        public = self.private.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            jwk = jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
        jwk.update({"kid": kid or self.kid, "use": "sig"})
        if self.declare_alg:
            jwk["alg"] = self.alg
        return jwk

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def ec_key(kid: str, curve: ec.EllipticCurve | None = None, alg: str = "ES384") -> KeyPair:
    return KeyPair(kid, alg, ec.generate_private_key(curve or ec.SECP384R1()))


def rsa_key(kid: str, alg: str = "RS384") -> KeyPair:
    # No "alg" in the JWK, as many issuers publish RSA keys: the header's alg must still be honoured.
    return KeyPair(
        kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=2048), declare_alg=False
    )


def jwks(*keys: KeyPair) -> dict[str, Any]:
    return {"keys": [k.public_jwk() for k in keys]}


def claims(audience: Any, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": ISS,
        "aud": audience,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not DROP}


def sign(key: KeyPair, payload: dict[str, Any], **header: Any) -> str:
    """A JWS with PyJWT; ``header`` members override the defaults (typ JWT, the key's kid)."""
    headers: dict[str, Any] = {"typ": "JWT", "kid": key.kid}
    headers.update(header)
    alg = headers.pop("alg", key.alg)
    dropped = [k for k, v in headers.items() if v is DROP]
    for k in dropped:
        del headers[k]
    if "typ" in dropped:
        headers["typ"] = None  # PyJWT then leaves typ out
    return jwt.encode(payload, key.private, algorithm=alg, headers=headers, sort_headers=False)


def token(key: KeyPair, audience: Any, header: dict[str, Any] | None = None, **claim_overrides: Any) -> str:
    return sign(key, claims(audience, **claim_overrides), **(header or {}))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token built by hand, for what PyJWT refuses to produce (alg none with any header, HS* with PEM)."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"


def hs256_with_public_key(key: KeyPair, payload: dict[str, Any]) -> str:
    """The algorithm-confusion attack: HMAC keyed with the (public) PEM a naive verifier would use."""
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    mac = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


@dataclass
class KeyServer:
    """A loopback HTTP server publishing a JWK Set at ``/jwks.json``; it records every request."""

    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    requests: list[str] = field(default_factory=list)
    delay: float = 0.0
    redirect_to: str | None = None
    base: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"{self.base}/jwks.json"

    def count(self, path: str = "/jwks.json") -> int:
        with self.lock:
            return sum(1 for p in self.requests if p == path)


@contextmanager
def key_server() -> Iterator[KeyServer]:
    state = KeyServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with state.lock:
                state.requests.append(self.path)
            if state.delay:
                time.sleep(state.delay)
            if state.redirect_to:
                self.send_response(302)
                self.send_header("Location", state.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps(state.jwks).encode()
            try:
                self.send_response(200 if self.path == "/jwks.json" else 404)
                self.send_header("Content-Type", "application/jwk-set+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (timeout tests)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()

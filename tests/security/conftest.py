"""Fixtures for the JWT tests: test key pairs and a factory of apps with JWT verification required."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask

from cds_hooks.app import create_app
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.process.config import Settings
from tests.security.jwt_helpers import ISS, KeyPair, ec_key, jwks, rsa_key

AppFactory = Callable[..., Flask]


@pytest.fixture(scope="session")
def es384() -> KeyPair:
    return ec_key("test-es384")


@pytest.fixture(scope="session")
def rs384() -> KeyPair:
    return rsa_key("test-rs384")


@pytest.fixture(scope="session")
def es256() -> KeyPair:
    return ec_key("test-es256", ec.SECP256R1(), "ES256")


@pytest.fixture(scope="session")
def attacker() -> KeyPair:
    """A key nobody trusts, used under trusted kids to forge signatures."""
    return ec_key("test-es384")


def write_issuers(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[AppFactory]:
    """``make_app(issuers, **settings)``: an app with CDS_HOOKS_JWT=required on ``tmp_path/data``
    (so two apps from one test share one SQLite file, like two instances sharing a database)."""
    apps: list[Flask] = []

    def factory(issuers: list[dict[str, Any]] | Path, **overrides: Any) -> Flask:
        if isinstance(issuers, Path):
            path = issuers
        else:
            path = write_issuers(tmp_path / f"trusted-issuers-{len(apps)}.json", issuers)
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "jwt": "required",
            "trusted_issuers": str(path),
        }
        values.update(overrides)
        app = create_app(Settings.from_env({}, **values), knowledge=default_knowledge())
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["cds_hooks"].store.dispose()


@pytest.fixture
def trusted(es384: KeyPair, rs384: KeyPair, es256: KeyPair) -> list[dict[str, Any]]:
    return [{"iss": ISS, "jwks": jwks(es384, rs384, es256)}]


@pytest.fixture
def app(make_app: AppFactory, trusted: list[dict[str, Any]]) -> Flask:
    return make_app(trusted)


@pytest.fixture
def client(app: Flask):  # type: ignore[no-untyped-def]
    return app.test_client()

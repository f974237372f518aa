"""Start-up configuration of JWT verification: clear errors for anything unusable, never a silent gap."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cds_hooks.process.config import ConfigError, Settings
from cds_hooks.security.jwt_verification import load_trusted_issuers, parse_algorithms
from tests.security.jwt_helpers import (
    DISCOVERY_AUD,
    DISCOVERY_PATH,
    ISS,
    SANDBOX_ISS,
    SANDBOX_KID,
    bearer,
    jwks,
    token,
)


def write(tmp_path: Path, data: object, name: str = "issuers.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_required_without_trusted_issuers_is_a_start_up_error(tmp_path):
    with pytest.raises(ConfigError, match="CDS_HOOKS_TRUSTED_ISSUERS"):
        Settings.from_env({"CDS_HOOKS_JWT": "required"}, data_dir=tmp_path)


def test_unknown_mode_is_a_start_up_error(tmp_path):
    with pytest.raises(ConfigError, match="CDS_HOOKS_JWT must be"):
        Settings.from_env({"CDS_HOOKS_JWT": "maybe"}, data_dir=tmp_path)


def test_settings_from_environment(tmp_path):
    s = Settings.from_env(
        {
            "CDS_HOOKS_JWT": "required",
            "CDS_HOOKS_TRUSTED_ISSUERS": "/etc/cds/issuers.json",
            "CDS_HOOKS_JWT_ALGORITHMS": "ES384",
            "CDS_HOOKS_JWT_CLOCK_SKEW": "30",
            "CDS_HOOKS_JWT_TENANTS": "a,b",
            "CDS_HOOKS_JKU_CACHE_TTL": "120",
            "CDS_HOOKS_JKU_TIMEOUT": "2.5",
        },
        data_dir=tmp_path,
    )
    assert (s.jwt, s.trusted_issuers, s.jwt_clock_skew, s.jku_cache_ttl, s.jku_timeout) == (
        "required",
        "/etc/cds/issuers.json",
        30,
        120,
        2.5,
    )
    defaults = Settings.from_env({}, data_dir=tmp_path)
    assert (defaults.jwt, defaults.jwt_algorithms, defaults.jwt_clock_skew) == ("off", "ES384,RS384", 60)


def test_bad_trusted_issuers_file_fails_app_start_up(make_app, tmp_path):
    with pytest.raises(ConfigError, match="not valid JSON"):
        make_app(write(tmp_path, "[{"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"iss": ISS}, "non-empty JSON list"),
        ([], "non-empty JSON list"),
        (["x"], "must be a JSON object"),
        ([{"jwks": {"keys": []}}], "'iss' must be"),
        ([{"iss": ISS}], "exactly one of"),
        ([{"iss": ISS, "jwks": {"keys": []}, "jku_allowlist": ["https://a.example/jwks"]}], "exactly one of"),
        ([{"iss": ISS, "jwk": {}}], "unknown field"),
        ([{"iss": ISS, "jwks": {"keys": []}}], "no usable public signing key"),
        ([{"iss": ISS, "jwks": []}], "must be an object"),
        ([{"iss": ISS, "jwks": {"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}}], "asymmetric"),
        ([{"iss": ISS, "jku_allowlist": []}], "non-empty list"),
        ([{"iss": ISS, "jku_allowlist": ["http://keys.example.org/jwks.json"]}], "must be https"),
        ([{"iss": ISS, "jwks_file": "missing.json"}], "cannot read"),
    ],
)
def test_invalid_trusted_issuers_files_are_explained(tmp_path, content, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_trusted_issuers(write(tmp_path, content))
    assert "CDS_HOOKS_TRUSTED_ISSUERS" in str(info.value)


def test_private_key_material_is_refused(tmp_path, es384):
    jwk = es384.public_jwk()
    jwk["d"] = "AAAA"
    with pytest.raises(ConfigError, match="private key material"):
        load_trusted_issuers(write(tmp_path, [{"iss": ISS, "jwks": {"keys": [jwk]}}]))


def test_key_without_kid_and_duplicate_kids_are_refused(tmp_path, es384, rs384):
    no_kid = es384.public_jwk()
    del no_kid["kid"]
    with pytest.raises(ConfigError, match="no 'kid'"):
        load_trusted_issuers(write(tmp_path, [{"iss": ISS, "jwks": {"keys": [no_kid]}}]))
    twice = {"keys": [es384.public_jwk(), rs384.public_jwk(kid=es384.kid)]}
    with pytest.raises(ConfigError, match="appears twice"):
        load_trusted_issuers(write(tmp_path, [{"iss": ISS, "jwks": twice}]))


def test_duplicate_issuer_is_refused(tmp_path, es384):
    entry = {"iss": ISS, "jwks": jwks(es384)}
    with pytest.raises(ConfigError, match="listed twice"):
        load_trusted_issuers(write(tmp_path, [entry, entry]))


def test_jwks_file_is_relative_to_the_trusted_issuers_file(make_app, tmp_path, es384):
    (tmp_path / "keys").mkdir()
    write(tmp_path / "keys", jwks(es384), "ehr.jwks.json")
    issuers = write(tmp_path, [{"iss": ISS, "jwks_file": "keys/ehr.jwks.json", "comment": "test EHR"}])
    c = make_app(issuers).test_client()
    assert c.get(DISCOVERY_PATH, headers=bearer(token(es384, DISCOVERY_AUD))).status_code == 200


def test_algorithm_allowlist_parsing(caplog):
    caplog.set_level(logging.WARNING, logger="cds_hooks.security")
    assert parse_algorithms("ES384, RS384,PS256") == ("ES384", "RS384", "PS256")
    assert parse_algorithms("HS256,none,ES384,HS512") == ("ES384",)
    assert "'HS256'" in caplog.text and "'none'" in caplog.text
    with pytest.raises(ConfigError, match="unknown or unsupported"):
        parse_algorithms("ES384,ES834")
    with pytest.raises(ConfigError, match="no usable"):
        parse_algorithms("HS256")


def test_shipped_sandbox_example_loads_with_the_sandbox_public_key(request):
    path = request.config.rootpath / "examples" / "trusted-issuers" / "sandbox.dev.json"
    issuers = load_trusted_issuers(path)
    assert list(issuers) == [SANDBOX_ISS]
    key = issuers[SANDBOX_ISS].keys[SANDBOX_KID]
    assert (key["kty"], key["crv"], key["alg"]) == ("EC", "P-384", "ES384")
    assert key["x"] == "dw_JGR8nB2I6XveNxUOl2qk699ZPLM2nYI5STSdiEl9avAkrm3CkfYMbrrjr8laB"
    assert "DEVELOPMENT" in json.loads(path.read_text())[0]["comment"]
    reference = Path("/work/shared/reference/sandbox-keys/jwks.json")
    if reference.exists():
        assert json.loads(reference.read_text())["keys"][0] == key

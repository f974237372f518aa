"""Keys from allowlisted `jku` URLs (X6, X7): fetched with a timeout, cached with a TTL, refetched once on
an unknown kid, never fetched for a jku outside the allowlist. Served by a real loopback HTTP server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from cds_hooks.security.jwt_verification import EXTENSION
from tests.security.jwt_helpers import (
    DISCOVERY_AUD,
    DISCOVERY_PATH,
    ISS,
    KeyServer,
    bearer,
    ec_key,
    jwks,
    key_server,
    token,
)
from tests.security.test_jwt import assert_refused


@pytest.fixture
def server() -> Iterator[KeyServer]:
    with key_server() as s:
        yield s


@pytest.fixture
def other_server() -> Iterator[KeyServer]:
    with key_server() as s:
        yield s


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def jku_app(make_app, server: KeyServer, **settings):  # type: ignore[no-untyped-def]
    app = make_app([{"iss": ISS, "jku_allowlist": [server.url]}], **settings)
    clock = FakeClock()
    app.extensions[EXTENSION].fetcher.clock = clock
    return app, app.test_client(), clock


def call(client, key, jku):  # type: ignore[no-untyped-def]
    return client.get(DISCOVERY_PATH, headers=bearer(token(key, DISCOVERY_AUD, header={"jku": jku})))


def test_x6_keys_fetched_from_allowlisted_jku_and_cached_within_ttl(make_app, server, es384):
    server.jwks = jwks(es384)
    _, client, clock = jku_app(make_app, server, jku_cache_ttl=300)
    assert call(client, es384, server.url).status_code == 200
    clock.now += 100
    assert call(client, es384, server.url).status_code == 200
    assert call(client, es384, server.url).status_code == 200
    assert server.count() == 1


def test_x6_keys_refetched_after_ttl(make_app, server, es384):
    server.jwks = jwks(es384)
    _, client, clock = jku_app(make_app, server, jku_cache_ttl=300)
    assert call(client, es384, server.url).status_code == 200
    clock.now += 301
    assert call(client, es384, server.url).status_code == 200
    assert server.count() == 2


def test_x6_key_removed_from_the_set_stops_working_after_ttl(make_app, server, es384):
    server.jwks = jwks(es384)
    _, client, clock = jku_app(make_app, server, jku_cache_ttl=300)
    assert call(client, es384, server.url).status_code == 200
    server.jwks = {"keys": [ec_key("successor").public_jwk()]}
    clock.now += 301
    assert_refused(call(client, es384, server.url))


def test_x6_unknown_kid_refetched_once_for_key_rotation(make_app, server, es384):
    rotated = ec_key("rotated-es384")
    server.jwks = jwks(es384)
    _, client, clock = jku_app(make_app, server, jku_cache_ttl=3600)
    assert call(client, es384, server.url).status_code == 200
    assert server.count() == 1
    server.jwks = jwks(es384, rotated)  # the issuer publishes a new key and starts using it
    clock.now += 60
    assert call(client, rotated, server.url).status_code == 200
    assert server.count() == 2
    # A kid that is not published: one more look, then refused; not a fetch per retry.
    clock.now += 60
    assert_refused(call(client, ec_key("never-published"), server.url))
    assert server.count() == 3


def test_x6_unknown_kids_cannot_force_a_fetch_per_request(make_app, server, es384):
    server.jwks = jwks(es384)
    _, client, _ = jku_app(make_app, server, jku_cache_ttl=3600)
    assert call(client, es384, server.url).status_code == 200
    for i in range(5):
        assert_refused(call(client, ec_key(f"made-up-{i}"), server.url))
    assert server.count() == 1  # all within the minimum refetch interval of the first fetch
    assert call(client, es384, server.url).status_code == 200  # known keys keep working


def test_x6_jku_not_on_allowlist_is_never_fetched(make_app, server, other_server, es384):
    server.jwks = other_server.jwks = jwks(es384)
    _, client, _ = jku_app(make_app, server)
    assert_refused(call(client, es384, other_server.url))
    assert_refused(call(client, es384, server.base + "/other-jwks.json"))  # same host, other path
    assert other_server.requests == []
    assert server.requests == []


def test_x6_jku_issuer_token_without_jku_refused(make_app, server, es384):
    server.jwks = jwks(es384)
    _, client, _ = jku_app(make_app, server)
    assert_refused(client.get(DISCOVERY_PATH, headers=bearer(token(es384, DISCOVERY_AUD))))
    assert server.requests == []


def test_x6_jku_fetch_has_a_timeout(make_app, server, es384):
    server.jwks = jwks(es384)
    server.delay = 3.0
    _, client, _ = jku_app(make_app, server, jku_timeout=0.3)
    started = time.monotonic()
    assert_refused(call(client, es384, server.url))
    assert time.monotonic() - started < 2.0


def test_x6_jku_redirect_is_not_followed(make_app, server, other_server, es384):
    other_server.jwks = jwks(es384)
    server.redirect_to = other_server.url
    _, client, _ = jku_app(make_app, server)
    assert_refused(call(client, es384, server.url))
    assert other_server.requests == []


def test_x6_jku_set_with_private_or_symmetric_keys_only_is_refused(make_app, server, es384):
    jwk = es384.public_jwk()
    jwk["d"] = "AAAA"
    server.jwks = {"keys": [jwk, {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}]}
    _, client, _ = jku_app(make_app, server)
    assert_refused(call(client, es384, server.url))


def test_x3_kid_appearing_twice_in_a_fetched_set_is_used_for_neither_key(make_app, server, es384):
    """X3 (2.0.1 and 3.0): the kid MUST be unique within the client's JWK Set. A set that reuses it is
    ambiguous: tokens naming that kid are refused; the other kids of the set still work."""
    other = ec_key("other")
    server.jwks = {"keys": [es384.public_jwk(), ec_key("x").public_jwk(kid=es384.kid), other.public_jwk()]}
    _, client, _ = jku_app(make_app, server)
    assert_refused(call(client, es384, server.url))
    assert call(client, other, server.url).status_code == 200

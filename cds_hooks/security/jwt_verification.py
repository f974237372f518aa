"""JWT verification of CDS Clients (CDS Hooks 2.0 X3–X7, E2) on discovery, service and feedback calls.

A CDS Client proves who it is with a short-lived JWT signed by its private key. We accept a token only
if every check passes, in this order: a ``Bearer`` token is present; header ``typ`` = ``JWT``, ``kid``
present, ``alg`` on the configured allowlist of *asymmetric* algorithms (``none`` and HS* never, even if
configured: a symmetric check could be passed with the public key); ``iss`` is a trusted issuer; the
key with that ``kid`` comes from the issuer's configured JWK Set or, for ``jku`` issuers, from an
allowlisted ``jku`` URL; then PyJWT verifies the signature, ``aud`` (the exact URL called), ``exp`` /
``iat`` / ``nbf`` with the clock skew and the required claims; ``tenant`` is on the allowlist if one is
configured; finally ``jti`` is recorded in the shared replay cache, which refuses a second use.

Every failure gives the same 401 OperationOutcome and ``WWW-Authenticate: Bearer`` (no hint of which
check failed, E2); the reason goes to the log with ``iss``, ``kid`` and ``jti`` — never the token.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from flask import Flask, Response, g, request
from sqlalchemy.engine import Engine

from cds_hooks.hooks.protocol import operation_outcome
from cds_hooks.process import metrics
from cds_hooks.process.config import PREFIX, ConfigError, Settings
from cds_hooks.security.replay_cache import MAX_ISS_LENGTH, MAX_JTI_LENGTH, ReplayCache

log = logging.getLogger("cds_hooks.security")

# The only algorithms ever used, whatever the configuration says (X5: no `none`, no HMAC).
ASYMMETRIC_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)
_EC_CURVE_ALGORITHM = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
# JWK members that only a private (or symmetric) key has: a trust file must never hold a secret.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")
ENTRY_FIELDS = frozenset(
    {"iss", "jwks", "jwks_file", "jku_allowlist", "audience", "sub", "comment", "description"}
)
MAX_TOKEN_CHARS = 8192
MAX_JWKS_BYTES = 256 * 1024
GENERIC_MESSAGE = "invalid or missing authorization"
EXTENSION = "cds_hooks.jwt"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class JwtRejected(Exception):
    """A token failed a check. ``reason`` is for the server log only, never for the client."""

    def __init__(self, reason: str, *, iss: object = None, kid: object = None, jti: object = None):
        super().__init__(reason)
        self.reason = reason
        self.iss = iss
        self.kid = kid
        self.jti = jti


class JwksFetchError(Exception):
    """A JWK Set could not be fetched or parsed from an allowlisted ``jku`` URL."""


@dataclass(frozen=True)
class TrustedIssuer:
    """One entry of the trusted-issuers file: static public keys by ``kid``, or allowlisted jku URLs."""

    iss: str
    keys: Mapping[str, Mapping[str, Any]]
    jku_allowlist: tuple[str, ...] = ()
    # Accepted as `aud` besides the URL called (EHRs where the audience is configured by hand).
    audiences: tuple[str, ...] = ()
    # The client id the issuer puts in `sub`; when set, a token must carry exactly this.
    sub: str | None = None


@dataclass(frozen=True)
class VerifiedToken:
    """What the rest of the request may know about its caller (kept on ``flask.g.jwt``)."""

    iss: str
    kid: str
    jti: str
    tenant: str | None
    expires_at: int


# --------------------------------------------------------------------------------------------------
# Configuration: algorithms, JWK Sets, the trusted-issuers file


def parse_algorithms(value: str) -> tuple[str, ...]:
    """The configured allowlist minus anything symmetric or `none` (dropped loudly, never used)."""
    allowed: list[str] = []
    for name in (a.strip() for a in value.split(",")):
        if not name:
            continue
        if name.lower() == "none" or name.upper().startswith("HS"):
            log.warning(
                "%sJWT_ALGORITHMS lists %r: ignored, symmetric algorithms and 'none' are never accepted",
                PREFIX,
                name,
            )
            continue
        if name not in ASYMMETRIC_ALGORITHMS:
            raise ConfigError(
                f"{PREFIX}JWT_ALGORITHMS: unknown or unsupported algorithm {name!r}; "
                f"choose from {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}"
            )
        if name not in allowed:
            allowed.append(name)
    if not allowed:
        raise ConfigError(f"{PREFIX}JWT_ALGORITHMS leaves no usable asymmetric algorithm")
    return tuple(allowed)


def _check_public_key(jwk: object) -> dict[str, Any]:
    """One JWK that may verify signatures: EC or RSA, public only, signature use; raises ValueError."""
    if not isinstance(jwk, dict):
        raise ValueError("a key is not a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise ValueError("a key has no 'kid' (tokens select their key by kid)")
    kty = jwk.get("kty")
    if kty not in ("EC", "RSA"):
        raise ValueError(f"key {kid!r}: kty {kty!r} is not an asymmetric signing key type (EC or RSA)")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise ValueError(f"key {kid!r} contains private key material; list public keys only")
    if jwk.get("use", "sig") != "sig":
        raise ValueError(f"key {kid!r}: 'use' is {jwk.get('use')!r}, not 'sig'")
    alg = jwk.get("alg")
    if alg is not None and alg not in ASYMMETRIC_ALGORITHMS:
        raise ValueError(f"key {kid!r}: alg {alg!r} is not an accepted asymmetric algorithm")
    if kty == "EC":
        curve_alg = _EC_CURVE_ALGORITHM.get(jwk.get("crv", ""))
        if curve_alg is None:
            raise ValueError(f"key {kid!r}: unsupported EC curve {jwk.get('crv')!r}")
        if alg is not None and alg != curve_alg:
            raise ValueError(f"key {kid!r}: alg {alg!r} does not fit curve {jwk.get('crv')!r}")
    try:
        jwt.PyJWK(jwk, algorithm=alg or ("RS384" if kty == "RSA" else None))
    except jwt.PyJWTError as exc:
        raise ValueError(f"key {kid!r} is not a valid JWK: {exc}") from None
    return jwk


def public_keys(jwks: object, *, strict: bool = True, source: str = "JWK Set") -> dict[str, dict[str, Any]]:
    """Public signing keys of a JWK Set by kid. ``strict`` (configuration): any bad key is an error;
    otherwise (fetched sets) bad keys are skipped with a warning, as other consumers of the set may
    understand them."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError('a JWK Set must be an object {"keys": [...]}')
    keys: dict[str, dict[str, Any]] = {}
    ambiguous: set[str] = set()
    for jwk in jwks["keys"]:
        try:
            key = _check_public_key(jwk)
        except ValueError as exc:
            if strict:
                raise
            log.warning("%s: skipped a key: %s", source, exc)
            continue
        if key["kid"] in keys or key["kid"] in ambiguous:
            if strict:
                raise ValueError(f"kid {key['kid']!r} appears twice")
            # The kid MUST be unique within the client's JWK Set (2.0.1 and 3.0): which of the two keys the
            # client signs with is unknown, so neither is used and a token naming that kid is refused.
            log.warning("%s: kid %r appears twice; neither key is used", source, key["kid"])
            keys.pop(key["kid"], None)
            ambiguous.add(key["kid"])
            continue
        keys[key["kid"]] = key
    if not keys:
        raise ValueError("the JWK Set has no usable public signing key")
    return keys


def _check_jku_url(url: object) -> str:
    if not isinstance(url, str) or not url:
        raise ValueError("jku_allowlist entries must be non-empty URL strings")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return url  # a local key server (tests, a sidecar); plain http anywhere else could be spoofed
    raise ValueError(f"jku URL {url!r} must be https (http only on a loopback address)")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None


def _site_settings(entry: Mapping[str, Any]) -> tuple[tuple[str, ...], str | None]:
    """The per-site ``audience`` (a URL or a list of them) and ``sub`` of an entry; ValueError if bad."""
    audience = entry.get("audience", [])
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or not all(isinstance(a, str) and a for a in audiences):
        raise ValueError("'audience' must be a URL string or a list of them")
    sub = entry.get("sub")
    if sub is not None and (not isinstance(sub, str) or not sub):
        raise ValueError("'sub' must be a non-empty string (the client id the EHR sends)")
    return tuple(audiences), sub


def load_trusted_issuers(path: str | Path) -> dict[str, TrustedIssuer]:
    """Read and validate the trusted-issuers file once, at start-up; any problem is a ConfigError."""
    file = Path(path).expanduser()
    where = f"{PREFIX}TRUSTED_ISSUERS ({file})"
    try:
        data = _read_json(file)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not isinstance(data, list) or not data:
        raise ConfigError(
            f'{where}: must be a non-empty JSON list of entries like {{"iss": ..., "jwks": ...}}'
        )
    issuers: dict[str, TrustedIssuer] = {}
    for index, entry in enumerate(data):
        label = f"{where}, entry {index}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{label}: must be a JSON object")
        iss = entry.get("iss")
        if not isinstance(iss, str) or not iss or len(iss) > MAX_ISS_LENGTH:
            raise ConfigError(f"{label}: 'iss' must be a non-empty string of at most {MAX_ISS_LENGTH} chars")
        label = f"{label} (iss {iss!r})"
        unknown = set(entry) - ENTRY_FIELDS
        if unknown:
            raise ConfigError(f"{label}: unknown field(s) {sorted(unknown)}; allowed: {sorted(ENTRY_FIELDS)}")
        sources = [name for name in ("jwks", "jwks_file", "jku_allowlist") if name in entry]
        if len(sources) != 1:
            raise ConfigError(f"{label}: give exactly one of 'jwks', 'jwks_file' or 'jku_allowlist'")
        if iss in issuers:
            raise ConfigError(f"{label}: this issuer is listed twice")
        try:
            audiences, sub = _site_settings(entry)
            if "jku_allowlist" in entry:
                urls = entry["jku_allowlist"]
                if not isinstance(urls, list) or not urls:
                    raise ValueError("'jku_allowlist' must be a non-empty list of URLs")
                jku = tuple(_check_jku_url(u) for u in urls)
                issuers[iss] = TrustedIssuer(iss, {}, jku, audiences, sub)
                continue
            if "jwks_file" in entry:
                if not isinstance(entry["jwks_file"], str) or not entry["jwks_file"]:
                    raise ValueError("'jwks_file' must be a path (relative to the trusted-issuers file)")
                jwks = _read_json(file.parent / Path(entry["jwks_file"]).expanduser())
            else:
                jwks = entry["jwks"]
            issuers[iss] = TrustedIssuer(iss, public_keys(jwks, strict=True), (), audiences, sub)
        except ValueError as exc:
            raise ConfigError(f"{label}: {exc}") from None
    return issuers


# --------------------------------------------------------------------------------------------------
# Keys fetched from allowlisted jku URLs


@dataclass
class _CachedSet:
    keys: dict[str, dict[str, Any]]
    fetched_at: float


class JwksFetcher:
    """JWK Sets from allowlisted ``jku`` URLs: fetched with a timeout, cached for ``ttl`` seconds,
    refetched once when a token names an unknown ``kid`` (key rotation), but at most once per
    ``min_refetch_interval`` per URL so that made-up kids cannot turn us into a request amplifier.
    Expired or failed sets are not used (fail closed). Callers must check the allowlist first."""

    def __init__(
        self,
        *,
        ttl: float,
        timeout: float,
        min_refetch_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
    ):
        self.ttl = ttl
        self.timeout = timeout
        self.min_refetch_interval = min_refetch_interval
        self.clock = clock
        self.session = session or requests.Session()
        self.fetch_count = 0
        self._cache: dict[str, _CachedSet] = {}
        self._last_attempt: dict[str, float] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def key(self, url: str, kid: str) -> dict[str, Any] | None:
        """The public JWK with ``kid`` published at ``url``, or None."""
        with self._lock_for(url):
            now = self.clock()
            cached = self._cache.get(url)
            refreshed = False
            if cached is None or now - cached.fetched_at >= self.ttl:
                cached = self._refresh(url, now)
                refreshed = True
            if cached is not None and kid in cached.keys:
                return cached.keys[kid]
            if not refreshed:  # unknown kid: the issuer may have rotated its keys; look once more
                cached = self._refresh(url, now)
                if cached is not None and kid in cached.keys:
                    return cached.keys[kid]
            return None

    def _lock_for(self, url: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(url, threading.Lock())

    def _refresh(self, url: str, now: float) -> _CachedSet | None:
        cached = self._cache.get(url)
        fresh = cached if cached is not None and now - cached.fetched_at < self.ttl else None
        last = self._last_attempt.get(url)
        if last is not None and now - last < self.min_refetch_interval:
            return fresh
        self._last_attempt[url] = now
        try:
            keys = self._fetch(url)
        except JwksFetchError as exc:
            log.warning("could not fetch the JWK Set at %s: %s", url, exc)
            if fresh is None:
                self._cache.pop(url, None)
            return fresh
        entry = _CachedSet(keys, now)
        self._cache[url] = entry
        return entry

    def _fetch(self, url: str) -> dict[str, dict[str, Any]]:
        self.fetch_count += 1
        deadline = time.monotonic() + self.timeout
        body = bytearray()
        try:
            # No redirects: a redirect could lead off the allowlist.
            with self.session.get(
                url,
                timeout=self.timeout,
                stream=True,
                allow_redirects=False,
                headers={"Accept": "application/jwk-set+json, application/json"},
            ) as response:
                if response.status_code != 200:
                    raise JwksFetchError(f"HTTP {response.status_code}")
                for chunk in response.iter_content(8192):
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksFetchError(f"larger than {MAX_JWKS_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise JwksFetchError(f"took longer than {self.timeout} s")
        except requests.RequestException as exc:
            raise JwksFetchError(f"{type(exc).__name__}") from None
        try:
            return public_keys(json.loads(body), strict=False, source=f"JWK Set at {url}")
        except ValueError as exc:
            raise JwksFetchError(str(exc)) from None


# --------------------------------------------------------------------------------------------------
# Verification


def _key_for_algorithm(jwk: Mapping[str, Any], alg: str) -> jwt.PyJWK:
    """Bind the key to the header's algorithm only if the key can honestly be used with it."""
    declared = jwk.get("alg")
    if declared is not None and declared != alg:
        raise JwtRejected(f"token alg {alg} does not match the key's alg {declared}")
    if jwk["kty"] == "EC" and _EC_CURVE_ALGORITHM.get(jwk.get("crv", "")) != alg:
        raise JwtRejected(f"token alg {alg} does not fit the key's curve {jwk.get('crv')}")
    if jwk["kty"] == "RSA" and not alg.startswith(("RS", "PS")):
        raise JwtRejected(f"token alg {alg} cannot be used with an RSA key")
    try:
        return jwt.PyJWK(dict(jwk), algorithm=alg)
    except jwt.PyJWTError as exc:
        raise JwtRejected(f"key unusable with {alg}: {type(exc).__name__}") from None


class JwtVerifier:
    """All JWT checks for one worker process; thread-safe."""

    def __init__(
        self,
        issuers: Mapping[str, TrustedIssuer],
        *,
        algorithms: Iterable[str],
        replay_cache: ReplayCache,
        fetcher: JwksFetcher,
        clock_skew: int = 60,
        tenants: Iterable[str] = (),
    ):
        self.issuers = dict(issuers)
        # Intersect again here: nothing symmetric gets through even if a caller builds us by hand.
        self.algorithms = tuple(a for a in algorithms if a in ASYMMETRIC_ALGORITHMS)
        self.replay_cache = replay_cache
        self.fetcher = fetcher
        self.clock_skew = clock_skew
        self.tenants = frozenset(tenants)

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> JwtVerifier:
        return cls(
            load_trusted_issuers(settings.trusted_issuers),
            algorithms=parse_algorithms(settings.jwt_algorithms),
            replay_cache=ReplayCache(engine),
            fetcher=JwksFetcher(ttl=settings.jku_cache_ttl, timeout=settings.jku_timeout),
            clock_skew=settings.jwt_clock_skew,
            tenants=[t.strip() for t in settings.jwt_tenants.split(",") if t.strip()],
        )

    def verify(self, authorization: str | None, audience: str) -> VerifiedToken:
        """Check the ``Authorization`` header value for a call to ``audience``; raises JwtRejected."""
        token = _bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise JwtRejected(f"malformed token ({type(exc).__name__})") from None
        kid, alg, iss, jti = (
            header.get("kid"),
            header.get("alg"),
            unverified.get("iss"),
            unverified.get("jti"),
        )
        context = {"iss": iss, "kid": kid, "jti": jti}
        if header.get("typ") != "JWT":
            raise JwtRejected(f"header typ is {_safe(header.get('typ'))}, not JWT", **context)
        if not isinstance(kid, str) or not kid:
            raise JwtRejected("header has no kid", **context)
        if alg not in self.algorithms:
            raise JwtRejected(f"alg {_safe(alg)} is not on the allowlist {list(self.algorithms)}", **context)
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise JwtRejected("issuer is not trusted", **context)
        key = _key_for_algorithm(self._find_key(issuer, header, kid, context), alg)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=[audience, *issuer.audiences],
                issuer=issuer.iss,
                leeway=self.clock_skew,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError as exc:
            raise JwtRejected(f"{type(exc).__name__}: {str(exc)[:200]}", **context) from None
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
            raise JwtRejected(f"jti must be a string of 1 to {MAX_JTI_LENGTH} characters", **context)
        if issuer.sub is not None and claims.get("sub") != issuer.sub:
            raise JwtRejected(f"sub {_safe(claims.get('sub'))} is not the issuer's client id", **context)
        tenant = claims.get("tenant")
        if self.tenants and not (isinstance(tenant, str) and tenant in self.tenants):
            raise JwtRejected("tenant is not on the allowlist", **context)
        # Last, so that only fully verified tokens can occupy a jti. The row must outlive every moment
        # at which the token would still pass the exp check, i.e. exp plus the skew.
        expires_at = int(claims["exp"]) + self.clock_skew
        if not self.replay_cache.remember(issuer.iss, jti, expires_at):
            raise JwtRejected("jti was already used (replay)", **context)
        return VerifiedToken(
            iss=issuer.iss,
            kid=kid,
            jti=jti,
            tenant=tenant if isinstance(tenant, str) else None,
            expires_at=int(claims["exp"]),
        )

    def _find_key(
        self, issuer: TrustedIssuer, header: Mapping[str, Any], kid: str, context: dict[str, Any]
    ) -> Mapping[str, Any]:
        if issuer.keys:
            # Configured keys are authoritative; a jku in the header is ignored, never fetched.
            if kid in issuer.keys:
                return issuer.keys[kid]
            raise JwtRejected("kid is not among the issuer's configured keys", **context)
        jku = header.get("jku")
        if not isinstance(jku, str) or not jku:
            raise JwtRejected(
                "header has no jku, and this issuer's keys are only published by jku", **context
            )
        if jku not in issuer.jku_allowlist:
            raise JwtRejected(f"jku {_safe(jku)} is not on the issuer's allowlist", **context)
        key = self.fetcher.key(jku, kid)
        if key is None:
            raise JwtRejected("kid is not in the JWK Set published at the jku", **context)
        return key


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise JwtRejected("no Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise JwtRejected("Authorization header is not 'Bearer <token>'")
    if len(token) > MAX_TOKEN_CHARS:
        raise JwtRejected(f"token longer than {MAX_TOKEN_CHARS} characters")
    return token


def _safe(value: object, limit: int = 100) -> str:
    """A log-safe rendering of an attacker-chosen value: escaped, bounded, '-' when absent."""
    if value is None:
        return "-"
    if not isinstance(value, str):
        return f"<{type(value).__name__}>"
    text = value.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "…"


# --------------------------------------------------------------------------------------------------
# Flask integration


def requires_jwt(method: str, path: str) -> bool:
    """Discovery, service and feedback calls (everything under /cds-services) except CORS preflight."""
    return method != "OPTIONS" and (path == "/cds-services" or path.startswith("/cds-services/"))


def expected_audience(public_base_url: str) -> str:
    """The exact URL the client called: behind a proxy the configured public base URL plus the path,
    else the URL Flask saw, without the query string."""
    base = public_base_url.strip().rstrip("/")
    return base + request.path if base else request.base_url


def unauthorized_response() -> Response:
    """The one answer for every failed check (E2)."""
    body = json.dumps(operation_outcome(GENERIC_MESSAGE, code="login"))
    response = Response(body, status=401, mimetype="application/fhir+json")
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def install_jwt_verification(app: Flask, settings: Settings, engine: Engine) -> JwtVerifier | None:
    """Register the JWT check on ``app`` when ``CDS_HOOKS_JWT=required``; warn loudly when it is off."""
    if settings.jwt != "required":
        log.warning(
            "JWT verification is OFF (%sJWT=off): discovery, service and feedback calls are accepted "
            "from anyone without a token. Development only; set %sJWT=required in production.",
            PREFIX,
            PREFIX,
        )
        if settings.trusted_issuers:
            log.warning("%sTRUSTED_ISSUERS is set but ignored because %sJWT=off", PREFIX, PREFIX)
        return None
    verifier = JwtVerifier.from_settings(settings, engine)
    app.extensions[EXTENSION] = verifier
    log.info(
        "JWT verification required: %d trusted issuer(s) %s, algorithms %s, clock skew %d s",
        len(verifier.issuers),
        sorted(verifier.issuers),
        ",".join(verifier.algorithms),
        verifier.clock_skew,
    )

    @app.before_request
    def verify_jwt() -> Response | None:
        if not requires_jwt(request.method, request.path):
            return None
        try:
            g.jwt = verifier.verify(
                request.headers.get("Authorization"), expected_audience(settings.public_base_url)
            )
        except JwtRejected as exc:
            metrics.count_jwt_rejection(exc.reason)
            log.warning(
                "JWT rejected on %s %s: %s (iss=%s kid=%s jti=%s)",
                request.method,
                request.path,
                exc.reason,
                _safe(exc.iss),
                _safe(exc.kid),
                _safe(exc.jti),
            )
            return unauthorized_response()
        return None

    return verifier

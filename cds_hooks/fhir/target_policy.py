"""Which FHIR servers a request may make the service call (SSRF protection, X1).

``fhirServer`` comes from the caller, so without a policy any client could make the service fetch
arbitrary URLs — cloud metadata endpoints, internal admin pages. Every URL the fallback fetches (the
base and every ``next`` link) is checked here:

- it must start with one of ``CDS_HOOKS_FHIR_ALLOWLIST`` (comma-separated URL prefixes) when that is set;
  an empty allowlist allows any host in development mode and none in production mode;
- in production mode it must be ``https`` unless ``CDS_HOOKS_FHIR_ALLOW_HTTP=true``;
- a host that is, or resolves to, a loopback, private, link-local or otherwise non-public address is
  refused unless ``CDS_HOOKS_FHIR_ALLOW_PRIVATE=true`` or an allowlist entry names that host explicitly.

``check`` returns the addresses it approved for a host name it resolved; the client connects to those
and to nothing else, so a DNS answer that changes after the check (rebinding) is never used.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cds_hooks.process.config import Settings

Resolver = Callable[[str], list[str]]
DNS_CACHE_SECONDS = 60.0


class FhirServerNotAllowed(ValueError):
    """The URL is outside this service's FHIR policy. The message is safe to show to the client."""


def _resolve(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    # IPv4 first: the client tries the approved addresses in this order.
    return sorted({str(info[4][0]) for info in infos}, key=lambda a: (":" in a, a))


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _normalise_prefix(prefix: str) -> str:
    return prefix.strip().rstrip("/") + "/"


@dataclass
class FhirPolicy:
    allowlist: tuple[str, ...] = ()
    production: bool = False
    allow_http: bool = False
    allow_private: bool = False
    resolver: Resolver = _resolve
    _cache: dict[str, tuple[float, list[str]]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> FhirPolicy:
        prefixes = tuple(_normalise_prefix(p) for p in settings.fhir_allowlist.split(",") if p.strip())
        return cls(
            allowlist=prefixes,
            production=settings.mode == "production",
            allow_http=settings.fhir_allow_http,
            allow_private=settings.fhir_allow_private,
        )

    def check(self, url: str) -> tuple[str, ...]:
        """Raise ``FhirServerNotAllowed`` unless the service may fetch ``url``. Returns the approved
        addresses of a host name it resolved (connect to these only), else ``()``: an IP literal, or a
        host the allowlist or ``CDS_HOOKS_FHIR_ALLOW_PRIVATE`` allows by name."""
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        if scheme not in ("http", "https") or not host:
            raise FhirServerNotAllowed("the FHIR server URL must be an absolute http(s) URL")
        if parts.username or parts.password:
            raise FhirServerNotAllowed("the FHIR server URL must not contain credentials")
        if scheme == "http" and self.production and not self.allow_http:
            raise FhirServerNotAllowed(
                "the FHIR server must use https (CDS Hooks requires TLS in production)"
            )
        candidate = _normalise_prefix(url.split("?", 1)[0].split("#", 1)[0])
        listed = any(candidate.startswith(prefix) for prefix in self.allowlist)
        if self.allowlist and not listed:
            raise FhirServerNotAllowed(
                "the FHIR server is not on this service's allowlist (CDS_HOOKS_FHIR_ALLOWLIST)"
            )
        if not self.allowlist and self.production:
            raise FhirServerNotAllowed("no FHIR server is allowed: CDS_HOOKS_FHIR_ALLOWLIST is empty")
        if listed or self.allow_private:
            return ()  # an allowlist entry naming the host is an explicit permission, private or not
        addresses = self._addresses(host)
        if not all(_is_public(a) for a in addresses):
            raise FhirServerNotAllowed(
                "the FHIR server address is loopback, private or link-local "
                "(set CDS_HOOKS_FHIR_ALLOW_PRIVATE=true or list it in CDS_HOOKS_FHIR_ALLOWLIST)"
            )
        return () if _is_literal(host) else tuple(addresses)

    def _addresses(self, host: str) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            pass
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(host)
            if cached and now - cached[0] < DNS_CACHE_SECONDS:
                return cached[1]
        try:
            addresses = self.resolver(host)
        except OSError as exc:
            raise FhirServerNotAllowed("the FHIR server host name could not be resolved") from exc
        if not addresses:
            raise FhirServerNotAllowed("the FHIR server host name could not be resolved")
        with self._lock:
            self._cache[host] = (now, addresses)
        return addresses

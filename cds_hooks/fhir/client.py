"""FHIR R4 REST client for the prefetch fallback: one pooled session, explicit timeouts, bounded paging.

The EHR's token is sent only to the EHR's own FHIR server origin, never to a ``next`` link that points
elsewhere, and never logged. When the target policy resolved a host name, the connection goes to the
address it approved (DNS rebinding), with the name kept for ``Host``, SNI and certificate checks.
Paging of a search sorted newest first stops once a page reaches past the window the rules read.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

from cds_hooks.fhir import json_codec
from cds_hooks.fhir.dates import parse_fhir_datetime
from cds_hooks.fhir.json_access import bundle_resources, objects
from cds_hooks.fhir.target_policy import FhirPolicy, FhirServerNotAllowed
from cds_hooks.process.config import PREFIX

log = logging.getLogger(__name__)

Resource = dict[str, Any]

FHIR_JSON = "application/fhir+json"


class FhirUnavailable(Exception):
    """Data could not be obtained from the FHIR server; ``reason`` is safe to show (no token, no body)."""

    def __init__(self, reason: str, status: int | None = None, *, unreachable: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        # No connection was made at all: another approved address of the same host may still work.
        self.unreachable = unreachable


class NotFound(FhirUnavailable):
    """The server answered 404 for a read."""


class FhirTimeout(FhirUnavailable):
    """The server did not answer within a limit; ``setting`` names the variable that sets that limit."""

    def __init__(self, reason: str, setting: str, *, unreachable: bool = False):
        super().__init__(reason, unreachable=unreachable)
        self.setting = setting


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to the IP address in the URL while TLS still checks the host name the policy approved.

    ``FhirClient`` rewrites the URL's host to the approved address and sends the name as ``Host``; for
    https this adapter puts the name back for SNI and certificate verification (urllib3's
    ``server_hostname`` / ``assert_hostname``), so rebinding the name after the check changes nothing."""

    def build_connection_pool_key_attributes(  # type: ignore[no-untyped-def]
        self, request, verify, cert=None
    ):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        name = request.headers.get(PINNED_NAME_HEADER)
        if name and host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = name
            pool_kwargs["assert_hostname"] = name
        return host_params, pool_kwargs

    def add_headers(self, request, **kwargs):  # type: ignore[no-untyped-def]
        """The marker header is for this adapter only: it never goes on the wire."""
        request.headers.pop(PINNED_NAME_HEADER, None)


# Carries the approved host name from FhirClient to the adapter; removed before sending.
PINNED_NAME_HEADER = "X-Cds-Hooks-Pinned-Name"


def build_session(pool_size: int = 10, retries: int = 1) -> requests.Session:
    """A session shared by all requests of a process: connection pooling plus a small retry for GETs
    on connection errors and 502/503/504 (idempotent reads only)."""
    session = requests.Session()
    retry = Retry(
        total=retries,
        connect=retries,
        read=0,
        status=retries,
        backoff_factor=0.1,
        status_forcelist=(502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        raise_on_status=False,
        respect_retry_after_header=False,
    )
    adapter = PinnedAddressAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"Accept": FHIR_JSON + ", application/json;q=0.9"})
    return session


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _pinned(url: str, address: str) -> tuple[str, str, str]:
    """``url`` with its host replaced by ``address``; the ``Host`` header value and the bare name."""
    parts = urlsplit(url)
    name = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=netloc)), host_header, name


@dataclass
class FhirClient:
    """Reads from one FHIR server on behalf of one CDS Hooks request."""

    base_url: str
    session: requests.Session
    access_token: str | None = None
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    max_pages: int = 20
    total_timeout: float = 20.0  # one answer, from request to last byte
    max_response_bytes: int = 50 * 1024 * 1024
    # Checked for the base URL and every absolute URL (next links) before it is fetched.
    policy: FhirPolicy | None = None

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/") + "/"
        self._origin = _origin(self.base_url)

    def __repr__(self) -> str:
        return f"FhirClient(base_url={self.base_url!r}, token={'***' if self.access_token else None})"

    def _url(self, relative: str) -> str:
        return urljoin(self.base_url, relative.lstrip("/"))

    def get_json(self, url: str) -> Any:
        """GET one URL (absolute, or relative to the base) and decode its JSON body."""
        absolute = url if url.startswith(("http://", "https://")) else self._url(url)
        addresses: tuple[str, ...] = ()
        if self.policy is not None:
            try:
                addresses = self.policy.check(absolute)
            except FhirServerNotAllowed as exc:
                raise FhirUnavailable(str(exc)) from exc
        headers = {}
        if self.access_token and _origin(absolute) == self._origin:
            headers["Authorization"] = f"Bearer {self.access_token}"
        if not addresses:
            return self._get(absolute, headers)
        # Connect only to an address the policy approved; try the next one if it cannot be reached.
        for number, address in enumerate(addresses, start=1):
            target, host, name = _pinned(absolute, address)
            try:
                return self._get(target, {**headers, "Host": host, PINNED_NAME_HEADER: name})
            except FhirUnavailable as exc:
                if not exc.unreachable or number == len(addresses):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _get(self, absolute: str, headers: dict[str, str]) -> Any:
        # The socket read timeout never exceeds the total: waiting longer could not succeed anyway.
        total_caps = self.total_timeout <= self.read_timeout
        read_timeout = min(self.read_timeout, self.total_timeout)
        read_setting = "FHIR_TOTAL_TIMEOUT" if total_caps else "FHIR_READ_TIMEOUT"
        deadline = time.monotonic() + self.total_timeout
        try:
            # No redirects: a redirect could lead past the target policy.
            response = self.session.get(
                absolute,
                headers=headers,
                timeout=(self.connect_timeout, read_timeout),
                stream=True,
                allow_redirects=False,
            )
            try:
                self._check_status(response)
                body = self._read_body(response, deadline)
            except ReadTimeoutError as exc:  # the body stalled after the headers came (raw urllib3)
                raise self._read_timeout(read_timeout, read_setting) from exc
            except urllib3.exceptions.HTTPError as exc:
                raise FhirUnavailable(
                    f"reading the FHIR server's answer failed ({type(exc).__name__})"
                ) from exc
            finally:
                response.close()
        except requests.ConnectTimeout as exc:
            raise self._connect_timeout() from exc
        except requests.Timeout as exc:
            raise self._read_timeout(read_timeout, read_setting) from exc
        except requests.ConnectionError as exc:
            # With a Retry policy, urllib3 wraps a timeout in MaxRetryError → ConnectionError.
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            # (urllib3's NewConnectionError, a refused connection, subclasses ConnectTimeoutError.)
            if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
                raise self._connect_timeout() from exc
            if isinstance(reason, ReadTimeoutError):
                raise self._read_timeout(read_timeout, read_setting) from exc
            raise FhirUnavailable("the FHIR server could not be reached", unreachable=True) from exc
        except requests.RequestException as exc:
            raise FhirUnavailable(f"the request to the FHIR server failed ({type(exc).__name__})") from exc
        try:
            return json_codec.loads(body)
        except ValueError as exc:
            raise FhirUnavailable("the FHIR server answered with a body that is not JSON") from exc

    def _connect_timeout(self) -> FhirTimeout:
        return FhirTimeout(
            f"the FHIR server did not accept a connection within {self.connect_timeout:g} s",
            f"{PREFIX}FHIR_CONNECT_TIMEOUT",
            unreachable=True,
        )

    @staticmethod
    def _read_timeout(seconds: float, setting: str) -> FhirTimeout:
        return FhirTimeout(f"the FHIR server did not answer within {seconds:g} s", f"{PREFIX}{setting}")

    @staticmethod
    def _check_status(response: requests.Response) -> None:
        if response.status_code == 404:
            raise NotFound("the FHIR server answered 404 Not Found", status=404)
        if response.status_code in (401, 403):
            raise FhirUnavailable(
                f"the FHIR server refused access ({response.status_code})", status=response.status_code
            )
        if response.status_code >= 400:
            raise FhirUnavailable(
                f"the FHIR server answered HTTP {response.status_code}", status=response.status_code
            )
        if response.status_code >= 300:
            raise FhirUnavailable(
                f"the FHIR server answered with a redirect (HTTP {response.status_code}), which is not "
                "followed",
                status=response.status_code,
            )

    def _read_body(self, response: requests.Response, deadline: float) -> bytes:
        """The body, bounded in size and in total time: a server that drips bytes slowly never trips
        the per-read timeout, so the whole answer has a deadline too."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_response_bytes:
            raise FhirUnavailable(f"the FHIR server's answer is larger than {self.max_response_bytes} bytes")
        body = bytearray()
        raw = response.raw
        while chunk := raw.read1(64 * 1024, decode_content=True):  # returns as soon as bytes arrive
            body += chunk
            if len(body) > self.max_response_bytes:
                raise FhirUnavailable(
                    f"the FHIR server's answer is larger than {self.max_response_bytes} bytes"
                )
            if time.monotonic() > deadline:
                raise FhirTimeout(
                    f"the FHIR server's answer took longer than {self.total_timeout:g} s",
                    f"{PREFIX}FHIR_TOTAL_TIMEOUT",
                )
        return bytes(body)

    def read(self, relative: str) -> Resource | None:
        """Read one resource (``Patient/123``); ``None`` when the server says 404."""
        try:
            data = self.get_json(relative)
        except NotFound:
            return None
        if not isinstance(data, dict) or "resourceType" not in data:
            raise FhirUnavailable("the FHIR server answered a read with something that is not a resource")
        if data["resourceType"] == "OperationOutcome":
            raise FhirUnavailable("the FHIR server answered a read with an OperationOutcome")
        return data

    def search(self, relative: str, since: datetime | None = None) -> list[Resource]:
        """Run a search and follow ``next`` links (at most ``max_pages`` pages); return every entry's
        resource (matches and includes; OperationOutcome entries are dropped). ``since``: see
        ``collect_bundle``."""
        bundle = self.get_json(relative)
        return self.collect_bundle(bundle, since=since)

    def collect_bundle(
        self, bundle: Any, pages_already: int = 1, *, since: datetime | None = None
    ) -> list[Resource]:
        """Resources of a searchset Bundle and of the pages its ``next`` links lead to.

        With ``since`` (the oldest date the rules read), paging stops after a page that is sorted newest
        first and already reaches past ``since``: every later page is older still."""
        resources: list[Resource] = []
        seen_urls: set[str] = set()
        pages = pages_already
        while True:
            if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
                raise FhirUnavailable("the FHIR server answered a search with something that is not a Bundle")
            resources.extend(bundle_resources(bundle))
            next_url = next_link(bundle)
            if not next_url:
                return resources
            if since is not None and passed_window(bundle, since):
                log.info(
                    "FHIR paging stopped early after %d page(s): sorted newest first, the page reaches "
                    "past %s, the oldest date the rules read",
                    pages,
                    since.date().isoformat(),
                )
                return resources
            if next_url in seen_urls:
                log.warning("FHIR paging loop detected; stopping after %d pages", pages)
                return resources
            if pages >= self.max_pages:
                raise FhirUnavailable(
                    f"the search has more than {self.max_pages} pages (the paging limit, "
                    f"{PREFIX}FHIR_MAX_PAGES)"
                )
            seen_urls.add(next_url)
            bundle = self.get_json(next_url)
            pages += 1


def next_link(bundle: dict[str, Any]) -> str | None:
    for link in objects(bundle.get("link")):
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


def _is_match(entry: dict[str, Any]) -> bool:
    mode = entry.get("search", {}).get("mode") if isinstance(entry.get("search"), dict) else None
    return mode in (None, "match")


def search_date(resource: dict[str, Any]) -> datetime | None:
    """The value an Observation's ``date`` search parameter sorts by: ``effective[x]`` (for a period
    its end, else its start), or ``None``."""
    when = parse_fhir_datetime(resource.get("effectiveDateTime")) or parse_fhir_datetime(
        resource.get("effectiveInstant")
    )
    period = resource.get("effectivePeriod")
    if when is None and isinstance(period, dict):
        when = parse_fhir_datetime(period.get("end")) or parse_fhir_datetime(period.get("start"))
    return when


def sorted_newest_first(bundle: dict[str, Any]) -> bool:
    """Whether the search asked for ``_sort=-date`` (the ``self`` link says what the server applied)."""
    for link in objects(bundle.get("link")):
        if isinstance(link, dict) and link.get("relation") == "self" and isinstance(link.get("url"), str):
            query = urlsplit(link["url"]).query
            return any(k == "_sort" and v.split(",")[0].strip() == "-date" for k, v in parse_qsl(query))
    return False


def passed_window(bundle: dict[str, Any], since: datetime) -> bool:
    """True when ``bundle`` is a page sorted newest first whose dates run in that order and whose oldest
    dated match is older than ``since``: then every later page is older still. A page that is not in
    that order (a server ignoring ``_sort``) never stops paging."""
    if not sorted_newest_first(bundle):
        return False
    dates = [
        search_date(entry["resource"])
        for entry in objects(bundle.get("entry"))
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict) and _is_match(entry)
    ]
    dated = [d for d in dates if d is not None]
    if not dated or any(newer < older for newer, older in itertools.pairwise(dated)):
        return False
    return dated[-1] < since

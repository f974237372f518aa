"""FHIR R4 REST client for the prefetch fallback: one pooled session, explicit timeouts, bounded paging.

The EHR's token is sent only to the EHR's own FHIR server origin, never to a ``next`` link that points
elsewhere, and never logged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from cds_hooks.fhir import json_codec
from cds_hooks.fhir.json_access import bundle_resources, objects
from cds_hooks.fhir.target_policy import FhirPolicy, FhirServerNotAllowed

log = logging.getLogger(__name__)

Resource = dict[str, Any]

FHIR_JSON = "application/fhir+json"


class FhirUnavailable(Exception):
    """Data could not be obtained from the FHIR server; ``reason`` is safe to show (no token, no body)."""

    def __init__(self, reason: str, status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status


class NotFound(FhirUnavailable):
    """The server answered 404 for a read."""


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
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"Accept": FHIR_JSON + ", application/json;q=0.9"})
    return session


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


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
        if self.policy is not None:
            try:
                self.policy.check(absolute)
            except FhirServerNotAllowed as exc:
                raise FhirUnavailable(str(exc)) from exc
        headers = {}
        if self.access_token and _origin(absolute) == self._origin:
            headers["Authorization"] = f"Bearer {self.access_token}"
        deadline = time.monotonic() + self.total_timeout
        try:
            response = self.session.get(
                absolute, headers=headers, timeout=(self.connect_timeout, self.read_timeout), stream=True
            )
            try:
                self._check_status(response)
                body = self._read_body(response, deadline)
            finally:
                response.close()
        except requests.Timeout as exc:
            raise FhirUnavailable("the FHIR server did not answer in time") from exc
        except requests.ConnectionError as exc:
            # With a Retry policy, urllib3 wraps a read timeout in MaxRetryError → ConnectionError.
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            if isinstance(reason, ReadTimeoutError):
                raise FhirUnavailable("the FHIR server did not answer in time") from exc
            raise FhirUnavailable("the FHIR server could not be reached") from exc
        except requests.RequestException as exc:
            raise FhirUnavailable(f"the request to the FHIR server failed ({type(exc).__name__})") from exc
        try:
            return json_codec.loads(body)
        except ValueError as exc:
            raise FhirUnavailable("the FHIR server answered with a body that is not JSON") from exc

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
                raise FhirUnavailable(f"the FHIR server's answer took longer than {self.total_timeout:g} s")
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

    def search(self, relative: str) -> list[Resource]:
        """Run a search and follow ``next`` links (at most ``max_pages`` pages); return every entry's
        resource (matches and includes; OperationOutcome entries are dropped)."""
        bundle = self.get_json(relative)
        return self.collect_bundle(bundle)

    def collect_bundle(self, bundle: Any, pages_already: int = 1) -> list[Resource]:
        """Resources of a searchset Bundle and of the pages its ``next`` links lead to."""
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
            if next_url in seen_urls:
                log.warning("FHIR paging loop detected; stopping after %d pages", pages)
                return resources
            if pages >= self.max_pages:
                raise FhirUnavailable(f"the search has more than {self.max_pages} pages (the paging limit)")
            seen_urls.add(next_url)
            bundle = self.get_json(next_url)
            pages += 1


def next_link(bundle: dict[str, Any]) -> str | None:
    for link in objects(bundle.get("link")):
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None

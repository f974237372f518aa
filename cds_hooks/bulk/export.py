"""A FHIR Bulk Data ``$export`` client: kick-off, status polling, download of the files with resume.

Kick-off asks only for the types the screen reads (``_type``) and, when given, ``_since`` and
``_typeFilter``, with ``Prefer: respond-async``. The status URL is polled as the server's
``Retry-After`` says. The files are streamed to ``<name>.part`` and renamed when complete; a download
cut off is resumed with ``Range: bytes=<size>-`` (a server without range support answers 200 and the
file is read again from its start). The job's status URL is kept in the output directory, so running
``cds-hooks export`` again with the same ``--out`` continues the same export instead of starting anew.
The token goes only in the ``Authorization`` header and never into a message.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from cds_hooks.bulk.ndjson import EXPORT_TYPES, NOT_READ_BY_RULES

JOB_FILE = ".export-job.json"
MANIFEST = "manifest.json"
NDJSON = "application/fhir+ndjson"
DEFAULT_RETRY_AFTER = 2.0
MAX_RETRY_AFTER = 120.0
CHUNK = 1024 * 1024
# The types the rules read (Device is exported only when asked for).
SCREEN_TYPES = tuple(t for t in EXPORT_TYPES if t not in NOT_READ_BY_RULES)


class ExportFailed(RuntimeError):
    """The export could not be started, finished or downloaded; the message says why (never the token)."""


@dataclass
class ExportClient:
    """One Bulk Data server (``base``: its FHIR base URL)."""

    base: str
    token: str | None = None
    session: requests.Session = field(default_factory=requests.Session)
    timeout: tuple[float, float] = (5.0, 60.0)
    sleep: Callable[[float], None] = time.sleep
    max_wait: float = 24 * 3600.0

    def _headers(self, accept: str = "application/fhir+json", token: bool = True) -> dict[str, str]:
        headers = {"Accept": accept}
        if token and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def kick_off(
        self,
        *,
        group: str | None = None,
        types: Sequence[str] = SCREEN_TYPES,
        since: str | None = None,
        type_filters: Sequence[str] = (),
    ) -> tuple[str, str]:
        """Start the export (``Group/<id>/$export``, else ``Patient/$export``); the status URL and the
        kick-off URL as sent (kept in the manifest: the screen reads the ``_typeFilter`` from it)."""
        path = f"Group/{group}/$export" if group else "Patient/$export"
        params: list[tuple[str, str]] = [("_outputFormat", NDJSON), ("_type", ",".join(types))]
        if since:
            params.append(("_since", since))
        params += [("_typeFilter", f) for f in type_filters]
        headers = {**self._headers(), "Prefer": "respond-async"}
        response = self._call("GET", f"{self.base}/{path}", params=params, headers=headers)
        if response.status_code != 202:
            raise ExportFailed(f"the $export kick-off at {self.base}/{path} {_refusal(response)}")
        location = response.headers.get("Content-Location")
        if not location:
            raise ExportFailed(f"the $export kick-off at {self.base}/{path} gave no Content-Location")
        return location, str(response.request.url or "")

    def wait(self, status_url: str, on_progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Poll until the export is complete; its manifest. 202 (and 429) wait as ``Retry-After`` says."""
        waited = 0.0
        while True:
            response = self._call("GET", status_url, headers=self._headers())
            if response.status_code == 200:
                try:
                    manifest = response.json()
                except ValueError as exc:
                    raise ExportFailed(f"the export status at {status_url} is not a JSON manifest") from exc
                if not isinstance(manifest, dict) or not isinstance(manifest.get("output"), list):
                    raise ExportFailed(f"the export status at {status_url} is not a Bulk Data manifest")
                return manifest
            if response.status_code not in (202, 429):
                raise ExportFailed(f"the export status at {status_url} {_refusal(response)}")
            if on_progress:
                on_progress(response.headers.get("X-Progress", "in progress"))
            delay = retry_after(response.headers.get("Retry-After"))
            if waited + delay > self.max_wait:
                raise ExportFailed(f"the export at {status_url} was not complete after {waited:.0f} s")
            self.sleep(delay)
            waited += delay

    def download(
        self,
        manifest: dict[str, Any],
        out: Path,
        on_bytes: Callable[[int], None] | None = None,
        kick_off: str | None = None,
    ) -> list[Path]:
        """Every output (and error) file into ``out``; files already complete are kept, partial ones
        resumed. Writes ``manifest.json`` (urls replaced by the local names) last."""
        token = bool(manifest.get("requiresAccessToken"))
        saved: dict[str, list[dict[str, Any]]] = {"output": [], "error": []}
        paths: list[Path] = []
        for kind in ("output", "error"):
            for i, entry in enumerate(manifest.get(kind) or []):
                url = entry.get("url") if isinstance(entry, dict) else None
                if not isinstance(url, str) or not url:
                    continue
                name = local_file_name(kind, i, entry)
                self._fetch(url, out / name, token=token, on_bytes=on_bytes)
                paths.append(out / name)
                saved[kind].append({**entry, "url": name, "sourceUrl": url})
        document = {**manifest, **saved, "downloaded": datetime.now(UTC).isoformat()}
        if kick_off:
            document["kickOff"] = kick_off
        _write_json(out / MANIFEST, document)
        return paths

    def _fetch(self, url: str, path: Path, *, token: bool, on_bytes: Callable[[int], None] | None) -> None:
        if path.is_file():
            return
        partial = path.with_name(path.name + ".part")
        have = partial.stat().st_size if partial.is_file() else 0
        headers = self._headers(NDJSON, token=token)
        if have:
            headers["Range"] = f"bytes={have}-"
        response = self._call("GET", url, headers=headers, stream=True)
        with response:
            if response.status_code == 416 and have:
                os.replace(partial, path)  # nothing left to read: the part was the whole file
                return
            if response.status_code not in (200, 206):
                raise ExportFailed(f"downloading {_safe(url)} {_refusal(response)}")
            mode = "ab" if response.status_code == 206 and have else "wb"
            try:
                with partial.open(mode) as fh:
                    # read1: what has arrived is written before a break is noticed, so a resume loses nothing
                    while block := response.raw.read1(CHUNK, decode_content=True):
                        fh.write(block)
                        if on_bytes:
                            on_bytes(len(block))
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                raise ExportFailed(
                    f"downloading {_safe(url)} broke off ({type(exc).__name__}); run the same command again "
                    "to resume"
                ) from exc
        os.replace(partial, path)

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ExportFailed(f"{_safe(url)} could not be reached ({type(exc).__name__})") from exc


def export(
    client: ExportClient,
    out: Path,
    *,
    group: str | None = None,
    types: Sequence[str] = SCREEN_TYPES,
    since: str | None = None,
    type_filters: Sequence[str] = (),
    on_progress: Callable[[str], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> list[Path]:
    """Kick off (or continue the job recorded in ``out``), wait, download; the files written."""
    out.mkdir(parents=True, exist_ok=True)
    job = out / JOB_FILE
    status_url: str | None = None
    kick_off: str | None = None
    if job.is_file():
        recorded = json.loads(job.read_text(encoding="utf-8"))
        status_url, kick_off = recorded.get("status"), recorded.get("kickOff")
    if not status_url:
        status_url, kick_off = client.kick_off(
            group=group, types=types, since=since, type_filters=type_filters
        )
        recorded = {"status": status_url, "kickOff": kick_off, "base": client.base, "group": group}
        _write_json(job, {**recorded, "types": list(types)})
    manifest = client.wait(status_url, on_progress)
    return client.download(manifest, out, on_bytes, kick_off=kick_off)


def local_file_name(kind: str, index: int, entry: dict[str, Any]) -> str:
    """``Observation-003.ndjson``: the type and position make a name unique whatever the url is."""
    rtype = entry.get("type") if isinstance(entry.get("type"), str) else "output"
    safe = "".join(ch for ch in rtype if ch.isalnum()) or "output"
    return f"{'error-' if kind == 'error' else ''}{safe}-{index:03d}.ndjson"


def retry_after(value: str | None) -> float:
    """Seconds to wait: ``Retry-After`` as seconds or an HTTP date, within 0.1 s and 2 minutes."""
    if not value:
        return DEFAULT_RETRY_AFTER
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER
        seconds = (when - datetime.now(UTC)).total_seconds() if when.tzinfo else DEFAULT_RETRY_AFTER
    return min(max(seconds, 0.1), MAX_RETRY_AFTER)


def _refusal(response: requests.Response) -> str:
    """``answered HTTP 401: <OperationOutcome diagnostics>`` (the server's words, cut short)."""
    detail = ""
    try:
        body = response.json()
        issues = body.get("issue") if isinstance(body, dict) else None
        if isinstance(issues, list) and issues and isinstance(issues[0], dict):
            detail = str(issues[0].get("diagnostics") or issues[0].get("details", {}).get("text") or "")
    except ValueError:
        pass
    return f"answered HTTP {response.status_code}" + (f": {detail[:200]}" if detail else "")


def _safe(url: str) -> str:
    """A URL for a message: without its query (a signed download URL carries credentials there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _write_json(path: Path, document: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=2), encoding="utf-8")
    os.replace(partial, path)

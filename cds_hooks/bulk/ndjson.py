"""The files of a Bulk Data export, and reading them one record at a time.

An export is a directory of NDJSON files (plain or gzip), or the manifest a finished ``$export`` answers
(``output`` entries with a ``url``; ``cds-hooks export`` writes it next to the files as
``manifest.json``). Plain files are split into byte ranges so that one big file is read by many tasks;
a gzip file is read by one. Every line is parsed on its own: a line that is not JSON, not a resource,
longer than ``max_line_bytes``, of an unknown type, or without the reference that says whose it is, is
an :class:`Issue` (file, line, reason) and the next line is read. Nothing in an issue comes from the
record's content beyond its resource type, so the report carries no patient data.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from fhir.resources.R4B import get_fhir_model_class

from cds_hooks.fhir.json_access import patient_reference_id

# The resource types an export for the rules holds (the $export ``_type``), and the ones they read.
EXPORT_TYPES = (
    "Patient",
    "Observation",
    "MedicationRequest",
    "MedicationStatement",
    "Condition",
    "ServiceRequest",
    "Device",
    "Medication",
)
# Exported types the rules do not read (none today: Device tells the switch of a pump or a CGM).
NOT_READ_BY_RULES: frozenset[str] = frozenset()


def read_by_rules(resource_type: str) -> bool:
    """Whether the screen keeps resources of this type (other FHIR types are counted and left out)."""
    return resource_type in EXPORT_TYPES and resource_type not in NOT_READ_BY_RULES


# Where each patient-compartment type names its patient.
SUBJECT_ELEMENT = {
    "Observation": "subject",
    "MedicationRequest": "subject",
    "MedicationStatement": "subject",
    "Condition": "subject",
    "ServiceRequest": "subject",
    "Device": "patient",
}

# A line longer than this is not parsed (a record that size is not clinical data; it would only cost
# memory): counted as an issue and skipped without being held.
DEFAULT_MAX_LINE_BYTES = 32 * 1024 * 1024
# Plain files are read in ranges of this size, one task each.
DEFAULT_PART_BYTES = 64 * 1024 * 1024
_SKIP_BLOCK = 1024 * 1024
_FILE_NAME = re.compile(r"\.(?:ndjson|jsonl)(?:\.gz)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Issue:
    """One record (or file) not screened, and why. ``line`` is 1-based within the file; ``None`` for a
    whole file. Until :func:`absolute_line` resolves it, a line read from a later part of a plain file
    counts from ``part_start``."""

    file: str
    line: int | None
    reason: str
    part_start: int = 0

    def text(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line is not None else self.file
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class Part:
    """A byte range of one file (``end`` -1: to the end; gzip files are always whole)."""

    path: str
    start: int = 0
    end: int = -1


@dataclass(frozen=True)
class Export:
    """The files to read and the issues found before reading (a manifest entry whose file is missing)."""

    files: tuple[str, ...]
    issues: tuple[Issue, ...] = ()
    manifest: str | None = None
    # The day the export's ``_typeFilter`` started the Observations at (``Observation?date=geYYYY-MM-DD``,
    # read from the manifest's ``request``): a screen whose window starts earlier would miss results.
    observations_from: str | None = None


class ExportNotFound(ValueError):
    """The path is neither a directory of NDJSON files nor a readable Bulk Data manifest."""


def is_gzip(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def discover(source: str | Path) -> Export:
    """The NDJSON files of a directory (its ``manifest.json`` when there is one), or of a manifest file."""
    path = Path(source)
    if path.is_dir():
        manifest = path / "manifest.json"
        if manifest.is_file():
            return read_manifest(manifest)
        files = sorted(str(p) for p in path.iterdir() if p.is_file() and _FILE_NAME.search(p.name))
        if not files:
            raise ExportNotFound(f"{path}: no NDJSON files (*.ndjson, *.ndjson.gz) in this directory")
        return Export(tuple(files))
    if path.is_file():
        return read_manifest(path)
    raise ExportNotFound(f"{path}: no such directory or manifest file")


def read_manifest(path: Path) -> Export:
    """A Bulk Data manifest: each ``output`` url is looked up by file name next to the manifest."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportNotFound(f"{path}: not a readable Bulk Data manifest ({type(exc).__name__})") from exc
    outputs = document.get("output") if isinstance(document, dict) else None
    if not isinstance(outputs, list):
        raise ExportNotFound(f"{path}: not a Bulk Data manifest (no 'output' list)")
    files: list[str] = []
    issues: list[Issue] = []
    for i, entry in enumerate(outputs):
        url = entry.get("url") if isinstance(entry, dict) else None
        if not isinstance(url, str) or not url:
            issues.append(Issue(str(path), None, f"output[{i}] has no url"))
            continue
        local = path.parent / local_name(url)
        if local.is_file():
            files.append(str(local))
        else:
            issues.append(Issue(str(local), None, "listed in the manifest but the file is missing"))
    # ``kickOff``: the URL ``cds-hooks export`` sent (a server's ``request`` may lack the query).
    bound = max(
        (b for b in (observations_bound(document.get(k)) for k in ("request", "kickOff")) if b), default=None
    )
    return Export(tuple(files), tuple(issues), str(path), bound)


_DATE_GE = re.compile(r"^ge(\d{4}(?:-\d{2}(?:-\d{2})?)?)")


def observations_bound(request: object) -> str | None:
    """The latest ``date=ge`` day of the Observation ``_typeFilter`` queries of a kick-off URL, or None
    when it has none (every Observation was asked for)."""
    if not isinstance(request, str):
        return None
    days = []
    for name, value in parse_qsl(urlsplit(request).query):
        rtype, _, query = value.partition("?")
        if name != "_typeFilter" or rtype.rsplit("/", 1)[-1] != "Observation":
            continue
        days += [m.group(1) for key, v in parse_qsl(query) if key == "date" and (m := _DATE_GE.match(v))]
    return max(days) if days else None


def local_name(url: str) -> str:
    """The file name a manifest ``url`` is stored under (its last path segment)."""
    name = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    return name or "output.ndjson"


def plan(files: tuple[str, ...] | list[str], part_bytes: int = DEFAULT_PART_BYTES) -> list[Part]:
    """Parts to read in parallel: plain files in ranges of ``part_bytes``, gzip files whole."""
    parts: list[Part] = []
    for path in files:
        size = os.path.getsize(path)
        if size <= part_bytes or is_gzip(path):
            parts.append(Part(path))
            continue
        parts.extend(Part(path, start, min(start + part_bytes, size)) for start in range(0, size, part_bytes))
    return parts


def _open(part: Part) -> IO[bytes]:
    if part.start == 0 and part.end == -1 and is_gzip(part.path):
        return gzip.open(part.path, "rb")
    return open(part.path, "rb")  # the caller closes it


def lines(part: Part, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, bytes)`` of every line that starts in ``part``, numbered from the part's start;
    ``None`` for a line longer than ``max_line_bytes`` (skipped in blocks, never held whole). A line
    belongs to the part its first byte is in."""
    with _open(part) as fh:
        if part.start > 0:
            fh.seek(part.start - 1)
            if fh.read(1) != b"\n":
                # The previous part reads the line this range starts inside (however long it is).
                _skip_line(fh, stop=part.end)
        number = 0
        while part.end == -1 or fh.tell() < part.end:
            line = fh.readline(max_line_bytes + 1)
            if not line:
                return
            number += 1
            if len(line) > max_line_bytes and not line.endswith(b"\n"):
                _skip_line(fh)
                yield number, None
            else:
                yield number, line


def _skip_line(fh: IO[bytes], stop: int = -1) -> None:
    """Read past the end of the current line, in blocks (or until ``stop``, a position in the file)."""
    while stop == -1 or fh.tell() < stop:
        block = fh.readline(_SKIP_BLOCK)
        if not block or block.endswith(b"\n"):
            return


def absolute_line(issue: Issue) -> Issue:
    """The issue with its line counted from the start of the file (newlines before its part counted)."""
    if issue.part_start == 0 or issue.line is None:
        return issue
    before, last = 0, b"\n"
    with open(issue.file, "rb") as fh:
        remaining = issue.part_start
        while remaining > 0:
            block = fh.read(min(remaining, _SKIP_BLOCK))
            if not block:
                break
            before, last = before + block.count(b"\n"), block[-1:]
            remaining -= len(block)
    # A part starting inside a line leaves that line to the part before: one more line precedes.
    return Issue(issue.file, before + issue.line + (last != b"\n"), issue.reason)


# ---------------------------------------------------------------- one record


@dataclass(frozen=True)
class Record:
    """A parsed resource: its type, whose it is (patient id; ``None`` for Medication) and the JSON."""

    resource_type: str
    patient_id: str | None
    resource: dict[str, Any]


_KNOWN_TYPE: dict[str, bool] = {}


def is_fhir_type(name: str) -> bool:
    """Whether ``name`` is a FHIR R4 resource type at all."""
    known = _KNOWN_TYPE.get(name)
    if known is None:
        try:
            get_fhir_model_class(name)
            known = name[:1].isupper()
        except (KeyError, ValueError, AttributeError, ImportError):
            known = False
        if len(_KNOWN_TYPE) < 1000:
            _KNOWN_TYPE[name] = known
    return known


def patient_of(resource: dict[str, Any], resource_type: str) -> str | None:
    """The patient id a patient-compartment resource refers to (``Patient/<id>``, relative or absolute)."""
    reference = resource.get(SUBJECT_ELEMENT[resource_type])
    return patient_reference_id(reference.get("reference")) if isinstance(reference, dict) else None


def parse(line: bytes) -> Record | str:
    """One NDJSON line as a :class:`Record`, or the reason it cannot be screened."""
    try:
        resource = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "not valid JSON"
    if not isinstance(resource, dict):
        return "not a JSON object"
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return "no resourceType"
    if rtype not in EXPORT_TYPES:
        if not is_fhir_type(rtype):
            return f"unknown resource type {rtype[:40]!r}"
        return Record(rtype, None, {})  # a FHIR type the screen does not read: counted, not kept
    if rtype in ("Patient", "Medication"):
        rid = resource.get("id")
        if not isinstance(rid, str) or not rid:
            return f"{rtype} without an id"
        return Record(rtype, rid if rtype == "Patient" else None, resource)
    patient = patient_of(resource, rtype)
    if patient is None:
        return f"{rtype} without a subject (a Patient reference)"
    return Record(rtype, patient, resource)


@dataclass(frozen=True)
class Unparsed:
    """A line of ``resource_type`` that ``outside`` set aside from its bytes, without parsing it."""

    resource_type: str


def read_part(
    part: Part,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    outside: Callable[[bytes], str | None] | None = None,
) -> Iterator[tuple[int, Record | Unparsed | str]]:
    """Every line of ``part`` parsed: ``(line, Record)`` or ``(line, reason)``; ``(line, Unparsed)`` for
    a line ``outside`` names the type of (a record out of bounds, told from its bytes). A file that cannot
    be read at all (or a gzip stream that breaks off) ends with one issue for the rest of it."""
    number = 0
    unparsed: dict[str, Unparsed] = {}  # one per type: most lines of an export are set aside
    try:
        for number, line in lines(part, max_line_bytes):
            if line is None:
                yield number, f"line longer than {max_line_bytes:,} bytes: not read"
                continue
            skipped = outside(line) if outside is not None else None
            if skipped is not None:
                yield number, unparsed.get(skipped) or unparsed.setdefault(skipped, Unparsed(skipped))
            elif line.strip():
                yield number, parse(line)
    except (OSError, EOFError, zlib.error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        yield number + 1, f"the file could not be read from here on ({reason})"

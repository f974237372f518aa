"""Prefetch resolution: per key, use what the EHR sent or fetch what it did not (P6–P10, F1–F3).

Each key is one of: present with data, present as an empty Bundle, ``null`` (no data: do not fetch),
absent (fetch), an OperationOutcome (the EHR's fetch failed: fetch), or a Bundle with a ``next`` link
(follow it). Missing keys are fetched concurrently. What cannot be obtained is a 412 naming the keys.

Keys with a window (the service's Observation searches) are read only as far back as the rules look:
a search the service builds carries ``date=ge<now - window>``, and paging a result sorted newest first
(fetched, or a prefetch Bundle with ``next`` links) stops once a page reaches past the window.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cds_hooks.fhir.client import FhirClient, FhirUnavailable, next_link
from cds_hooks.fhir.json_access import bundle_resources, obj, patient_reference_id
from cds_hooks.fhir.resource_index import Resource, ResourceIndex, resolve_reference
from cds_hooks.hooks.protocol import CdsError, CdsRequest

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")
_TODAY = re.compile(r"today\(\)(?:\s*([+-])\s*(\d{1,5})\s*days?)?")

_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


class TemplateError(ValueError):
    """A template token the request cannot fill."""


def fill_template(template: str, context: dict[str, Any], today: date | None = None) -> str:
    """Replace ``{{context.x}}``, the 2.0 user tokens (P2) and ``{{today()}}`` / ``{{today() - N days}}``
    (P4, from ``today``, default the current UTC date). A token that cannot be filled raises
    ``TemplateError``; a user token for another user type fills with nothing, as the spec allows."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(1)
        day = _TODAY.fullmatch(token)
        if day:
            sign, days = day.groups()
            offset = timedelta(days=int(days or 0) * (-1 if sign == "-" else 1))
            return ((today or datetime.now(UTC).date()) + offset).isoformat()
        if token.startswith("context."):
            value = context.get(token[len("context.") :])
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
            raise TemplateError(f"the request context has no value for {{{{{token}}}}}")
        if token in _USER_TOKENS:
            user = context.get("userId")
            rtype = _USER_TOKENS[token]
            if isinstance(user, str) and user.startswith(rtype + "/"):
                return user.split("/", 1)[1]
            return ""
        raise TemplateError(f"unsupported prefetch token {{{{{token}}}}}")

    return _TOKEN.sub(replace, template)


class PrefetchUnavailable(CdsError):
    """412: keys that could not be obtained. ``failures`` keeps, per key, the search that was sent and
    the client's error, so the command line can name the search and the setting that governs it."""

    def __init__(self, message: str, failures: Mapping[str, tuple[str, Exception]], expression: list[str]):
        super().__init__(412, message, expression=expression)
        self.failures = dict(failures)


def bounded(search: str, days: int, now: datetime) -> str:
    """``search`` with ``date=ge<now - days>`` unless it already has a ``date`` parameter."""
    query = urlsplit(search).query
    if any(name.split(":")[0] == "date" for name, _ in parse_qsl(query)):
        return search
    return f"{search}{'&' if query else '?'}date=ge{window_start(days, now).date().isoformat()}"


def window_start(days: int, now: datetime) -> datetime:
    """Midnight UTC ``days`` before ``now``: the oldest time a windowed key needs."""
    start = (now.astimezone(UTC) - timedelta(days=days)).date()
    return datetime(start.year, start.month, start.day, tzinfo=UTC)


@dataclass
class Resolution:
    """The outcome of prefetch resolution: resources per key and where each key came from."""

    resources: dict[str, list[Resource]] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)  # key -> prefetch | null | fetched | ...

    def all_resources(self) -> list[Resource]:
        return [r for rs in self.resources.values() for r in rs]


def checked_value(key: str, value: Any) -> dict[str, Any]:
    """A non-null prefetch value, which must be a FHIR resource (a Bundle included): else 400."""
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise CdsError(
            400,
            f"prefetch['{key}'] must be a FHIR resource, a Bundle or null.",
            expression=[f"prefetch.{key}"],
        )
    return value


def prefetched(key: str, value: Any) -> list[Resource] | None:
    """The resources one prefetch value brings: none for null, a Bundle's entries, or the resource;
    None when the EHR sent an OperationOutcome (the data must be fetched). Bad values are a 400. The
    service's ``resolve`` and the offline evaluation read a prefetch this one way."""
    if value is None:
        return []
    resource = checked_value(key, value)
    if resource["resourceType"] == "OperationOutcome":
        return None
    if resource["resourceType"] == "Bundle":
        return bundle_resources(resource)
    return [resource]


def _is_read(template: str) -> bool:
    return "?" not in template


def patient_of(resource: Mapping[str, Any]) -> str | None:
    """The id of the patient a resource is about: a Patient's own id, else the ``Patient/<id>`` of its
    ``subject`` or ``patient`` reference (relative or absolute); ``None`` when it names none (a Medication,
    a reference by identifier only)."""
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) else None
    for element in ("subject", "patient"):
        found = patient_reference_id(obj(resource.get(element)).get("reference"))
        if found is not None:
            return found
    return None


def check_patient(key: str, resources: list[Resource], patient_id: str) -> None:
    """400 when a prefetched resource is about another patient than ``context.patientId``: a card built
    on it would be shown, and its draft orders written, for the wrong patient."""
    for resource in resources:
        other = patient_of(resource)
        if other is not None and other != patient_id:
            name = f"{resource.get('resourceType')}/{str(resource.get('id', '?'))[:64]}"
            raise CdsError(
                400,
                f"prefetch['{key}'] holds {name}, which is about another patient than "
                "context.patientId: every prefetched resource must be about the patient in context.",
                expression=[f"prefetch.{key}"],
            )


def resolve(
    request: CdsRequest,
    templates: dict[str, str],
    client: FhirClient | None,
    max_workers: int = 8,
    *,
    windows: Mapping[str, int] | None = None,
    now: datetime | None = None,
) -> Resolution:
    """Resolve every template key; raise ``PrefetchUnavailable`` (412) naming the keys that cannot be
    obtained. ``windows``: key -> days back the rules read (date bound and early end of paging)."""
    windows = windows or {}
    now = now or datetime.now(UTC)
    resolution = Resolution()
    to_fetch: dict[str, str] = {}  # key -> why
    to_follow: dict[str, dict[str, Any]] = {}

    for key, template in templates.items():
        if key not in request.prefetch:
            to_fetch[key] = "absent"
            continue
        value = request.prefetch[key]
        resources = prefetched(key, value)
        if resources is None:
            to_fetch[key] = "OperationOutcome"
            continue
        rtype = value["resourceType"] if value is not None else None
        if rtype not in (None, "Bundle") and not _is_read(template):
            raise CdsError(
                400,
                f"prefetch['{key}'] answers a search and must be a Bundle, not a {rtype}.",
                expression=[f"prefetch.{key}"],
            )
        check_patient(key, resources, request.patient_id)
        if rtype == "Bundle" and next_link(value):
            to_follow[key] = value
            continue
        resolution.resources[key] = resources
        resolution.source[key] = "null" if value is None else "prefetch"

    if not to_fetch and not to_follow:
        return resolution
    if client is None:
        keys = sorted([*to_fetch, *to_follow])
        raise CdsError(
            412,
            f"Required prefetch data is missing and no fhirServer was given to fetch it: {', '.join(keys)}.",
            expression=[f"prefetch.{k}" for k in keys],
        )

    searches: dict[str, str] = {}

    def fetch(key: str) -> list[Resource]:
        since = window_start(windows[key], now) if key in windows else None
        if key in to_follow:
            searches[key] = "the next pages of the prefetch Bundle"
            return client.collect_bundle(to_follow[key], since=since)
        path = searches[key] = fill_template(templates[key], request.context, now.date())
        if _is_read(templates[key]):
            resource = client.read(path)
            return [resource] if resource else []
        if key in windows:
            path = searches[key] = bounded(path, windows[key], now)
        return client.search(path, since=since)

    failures: dict[str, tuple[str, Exception]] = {}
    keys = [*to_fetch, *to_follow]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(keys))) as pool:
        futures = {key: pool.submit(fetch, key) for key in keys}
        for key, future in futures.items():
            try:
                resolution.resources[key] = future.result()
                resolution.source[key] = "paged" if key in to_follow else "fetched"
            except (FhirUnavailable, TemplateError) as exc:
                failures[key] = (searches.get(key, templates[key]), exc)
    if failures:
        detail = "; ".join(f"{k}: {exc}" for k, (_, exc) in sorted(failures.items()))
        raise PrefetchUnavailable(
            f"Required data could not be obtained from the FHIR server ({detail}).",
            failures,
            expression=[f"prefetch.{k}" for k in sorted(failures)],
        )
    return resolution


def resolve_medication_references(
    index: ResourceIndex, client: FhirClient | None, max_workers: int = 8
) -> list[str]:
    """Read the Medications that MedicationStatements/Requests reference but nobody sent.

    A referenced Medication decides whether the order is animal insulin or a glucocorticoid: without a
    FHIR server to read it from (a prefetch-only request whose Bundles lack the ``_include``d Medications),
    or when the server cannot be read, the answer is a 412 naming the resources whose medication could not
    be read — never an empty answer that looks like "nothing found". Returns the references the server
    says do not exist (404: the record's own dangling references, logged by the caller; the medication then
    counts only by what its own text says)."""
    wanted: dict[str, list[str]] = {}  # reference -> the resources that name it
    for rtype in ("MedicationStatement", "MedicationRequest"):
        for resource in index.of_type(rtype):
            ref = obj(resource.get("medicationReference")).get("reference")
            if not isinstance(ref, str) or ref.startswith("#"):
                continue
            if resolve_reference(index, resource, ref) is None:
                wanted.setdefault(ref, []).append(f"{rtype}/{str(resource.get('id', '?'))[:64]}")
    if not wanted:
        return []
    if client is None:
        raise MedicationUnavailable(wanted, "no fhirServer was given to read it from")

    def read(ref: str) -> Resource | FhirUnavailable | None:
        try:
            return client.read(ref)
        except FhirUnavailable as exc:
            log.warning("could not read referenced %s: %s", ref.split("/")[0], exc.reason)
            return exc

    unresolved: list[str] = []
    failed: dict[str, list[str]] = {}
    refs = list(wanted)
    with ThreadPoolExecutor(max_workers=min(max_workers, len(refs))) as pool:
        for ref, resource in zip(refs, pool.map(read, refs), strict=True):
            if isinstance(resource, FhirUnavailable):
                failed[ref] = wanted[ref]
            elif resource is None:
                unresolved.append(ref)
            else:
                index.add(resource)
    if failed:
        raise MedicationUnavailable(failed, "the FHIR server could not be read")
    return unresolved


class MedicationUnavailable(CdsError):
    """412: medications referenced by the record that neither the prefetch nor the FHIR server supplied."""

    def __init__(self, wanted: Mapping[str, list[str]], why: str):
        holders = [holder for holders in wanted.values() for holder in holders]
        named = ", ".join(holders[:5]) + (f" and {len(holders) - 5} more" if len(holders) > 5 else "")
        keys = sorted({f"prefetch.{_KEY_OF_TYPE[h.split('/')[0]]}" for h in holders})
        super().__init__(
            412,
            f"Could not read the medication of {named} ({why}): check the EHR's prefetch — the "
            f"{' and '.join(k.removeprefix('prefetch.') for k in keys)} templates include the referenced "
            "Medications (_include), or send fhirServer so that the service can read them.",
            expression=keys,
        )
        self.references = dict(wanted)


_KEY_OF_TYPE = {"MedicationStatement": "medicationStatements", "MedicationRequest": "medicationRequests"}

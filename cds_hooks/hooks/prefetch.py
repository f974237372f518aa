"""Prefetch resolution: per key, use what the EHR sent or fetch what it did not (P6–P10, F1–F3).

Each key is one of: present with data, present as an empty Bundle, ``null`` (no data: do not fetch),
absent (fetch), an OperationOutcome (the EHR's fetch failed: fetch), or a Bundle with a ``next`` link
(follow it). Missing keys are fetched concurrently. What cannot be obtained is a 412 naming the keys.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cds_hooks.fhir.client import FhirClient, FhirUnavailable, next_link
from cds_hooks.fhir.json_access import bundle_resources, obj
from cds_hooks.fhir.resource_index import Resource, ResourceIndex, resolve_reference
from cds_hooks.hooks.protocol import CdsError, CdsRequest

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")

_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


class TemplateError(ValueError):
    """A template token the request cannot fill."""


def fill_template(template: str, context: dict[str, Any]) -> str:
    """Replace ``{{context.x}}`` and the 2.0 user tokens (P2). A token that cannot be filled raises
    ``TemplateError``; a user token for another user type fills with nothing, as the spec allows."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(1)
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


def _is_read(template: str) -> bool:
    return "?" not in template


def resolve(
    request: CdsRequest, templates: dict[str, str], client: FhirClient | None, max_workers: int = 6
) -> Resolution:
    """Resolve every template key; raise ``CdsError(412)`` naming the keys that cannot be obtained."""
    resolution = Resolution()
    to_fetch: dict[str, str] = {}  # key -> why
    to_follow: dict[str, dict[str, Any]] = {}

    for key, template in templates.items():
        if key not in request.prefetch:
            to_fetch[key] = "absent"
            continue
        value = request.prefetch[key]
        if value is None:
            resolution.resources[key] = []
            resolution.source[key] = "null"
            continue
        rtype = checked_value(key, value)["resourceType"]
        if rtype == "OperationOutcome":
            to_fetch[key] = "OperationOutcome"
        elif rtype == "Bundle":
            if next_link(value):
                to_follow[key] = value
            else:
                resolution.resources[key] = bundle_resources(value)
                resolution.source[key] = "prefetch"
        elif _is_read(template):
            resolution.resources[key] = [value]
            resolution.source[key] = "prefetch"
        else:
            raise CdsError(
                400,
                f"prefetch['{key}'] answers a search and must be a Bundle, not a {rtype}.",
                expression=[f"prefetch.{key}"],
            )

    if not to_fetch and not to_follow:
        return resolution
    if client is None:
        keys = sorted([*to_fetch, *to_follow])
        raise CdsError(
            412,
            f"Required prefetch data is missing and no fhirServer was given to fetch it: {', '.join(keys)}.",
            expression=[f"prefetch.{k}" for k in keys],
        )

    def fetch(key: str) -> list[Resource]:
        if key in to_follow:
            return client.collect_bundle(to_follow[key])
        path = fill_template(templates[key], request.context)
        if _is_read(templates[key]):
            resource = client.read(path)
            return [resource] if resource else []
        return client.search(path)

    failures: dict[str, str] = {}
    keys = [*to_fetch, *to_follow]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(keys))) as pool:
        futures = {key: pool.submit(fetch, key) for key in keys}
        for key, future in futures.items():
            try:
                resolution.resources[key] = future.result()
                resolution.source[key] = "paged" if key in to_follow else "fetched"
            except (FhirUnavailable, TemplateError) as exc:
                failures[key] = str(exc)
    if failures:
        detail = "; ".join(f"{k}: {why}" for k, why in sorted(failures.items()))
        raise CdsError(
            412,
            f"Required data could not be obtained from the FHIR server ({detail}).",
            expression=[f"prefetch.{k}" for k in sorted(failures)],
        )
    return resolution


def resolve_medication_references(
    index: ResourceIndex, client: FhirClient | None, max_workers: int = 6
) -> list[str]:
    """Read the Medications that MedicationStatements/Requests reference but nobody sent.

    Returns the references that stay unresolved (logged by the caller; the medication then counts
    only by what its own text says)."""
    wanted: list[str] = []
    for rtype in ("MedicationStatement", "MedicationRequest"):
        for resource in index.of_type(rtype):
            ref = obj(resource.get("medicationReference")).get("reference")
            if not isinstance(ref, str) or ref.startswith("#"):
                continue
            if resolve_reference(index, resource, ref) is None and ref not in wanted:
                wanted.append(ref)
    if not wanted or client is None:
        return wanted

    def read(ref: str) -> Resource | None:
        try:
            return client.read(ref)
        except FhirUnavailable as exc:
            log.warning("could not read referenced %s: %s", ref.split("/")[0], exc.reason)
            return None

    unresolved: list[str] = []
    with ThreadPoolExecutor(max_workers=min(max_workers, len(wanted))) as pool:
        for ref, resource in zip(wanted, pool.map(read, wanted), strict=True):
            if resource is None:
                unresolved.append(ref)
            else:
                index.add(resource)
    return unresolved

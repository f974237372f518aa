"""Index raw FHIR JSON by type, code and reference before anything is modelled.

A 2,000-resource prefetch must stay fast, so nothing here builds a pydantic model: rules only
pay for parsing the handful of resources they actually read (see ``ResourceIndex.model``).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from cds_hooks.fhir.concept_memo import Memo
from cds_hooks.fhir.json_access import objects

Resource = dict[str, Any]


class ResourceIndex:
    """Resources by type, by ``system|code`` of their main code, and by ``Type/id`` reference."""

    def __init__(self, resources: Iterable[Resource] = ()) -> None:
        self._by_type: dict[str, list[Resource]] = defaultdict(list)
        self._by_ref: dict[str, Resource] = {}
        self._seen: set[str] = set()
        self._problems: dict[int, str | None] = {}
        self._rejected: dict[int, str] = {}
        for resource in resources:
            self.add(resource)

    def add(self, resource: Resource) -> None:
        """Add one resource; a second copy of the same ``Type/id`` (from two prefetch keys) is dropped."""
        if not isinstance(resource, dict):
            return
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            return
        rid = resource.get("id")
        if isinstance(rid, str) and rid:
            ref = f"{rtype}/{rid}"
            if ref in self._seen:
                return
            self._seen.add(ref)
            self._by_ref[ref] = resource
        self._by_type[rtype].append(resource)

    def problem(self, resource: Resource) -> str | None:
        """Validate one resource against its FHIR R4 (R4B) model, once; ``None`` when valid, else a short
        reason (never the resource's content)."""
        key = id(resource)
        if key not in self._problems:
            self._problems[key] = validation_problem(resource)
        return self._problems[key]

    def rejection(self, resource: Resource) -> str | None:
        """Why a resource was rejected by ``reject_invalid`` (no validation happens here)."""
        return self._rejected.get(id(resource))

    def reject_invalid(self, references: Iterable[str]) -> bool:
        """Validate the resources a card is about to cite; mark the invalid ones so the next evaluation
        reports them as unusable instead of using them. True when anything new was rejected.

        Only cited resources are modelled: a 2,000-resource record pays for the handful a card rests on."""
        rejected = False
        for reference in references:
            resource = self.get(reference)
            if resource is None or id(resource) in self._rejected:
                continue
            reason = self.problem(resource)
            if reason:
                self._rejected[id(resource)] = reason
                rejected = True
        return rejected

    def of_type(self, resource_type: str) -> list[Resource]:
        return self._by_type.get(resource_type, [])

    def get(self, reference: str) -> Resource | None:
        """Resolve a relative ``Type/id`` reference (absolute URLs are matched on their last two parts)."""
        if not isinstance(reference, str):
            return None
        parts = reference.rstrip("/").split("/")
        if len(parts) < 2:
            return None
        ref = "/".join(parts[-2:]) if len(parts) > 2 else reference
        # Strip a version suffix: Type/id/_history/n
        if "/_history/" in reference:
            base = reference.split("/_history/")[0].split("/")
            ref = "/".join(base[-2:])
        return self._by_ref.get(ref)

    def __iter__(self) -> Iterator[Resource]:
        for resources in self._by_type.values():
            yield from resources

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_type.values())


def resolve_reference(index: ResourceIndex, container: Resource, reference: str | None) -> Resource | None:
    """Resolve a reference found inside ``container``: ``#id`` to a contained resource, else the index."""
    if not isinstance(reference, str) or not reference:
        return None
    if reference.startswith("#"):
        for contained in objects(container.get("contained")):
            if isinstance(contained, dict) and contained.get("id") == reference[1:]:
                return contained
        return None
    return index.get(reference)


def validation_problem(resource: Resource) -> str | None:
    """Validation is a pure function of the resource's content, and EHRs send the same resources again
    and again (every chart open, every order in a session): results are memoised by a content digest."""
    try:
        content = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return _validate(resource)
    return _VALIDATION_MEMO.get(hashlib.blake2b(content, digest_size=16).digest(), resource)


def _validate(resource: Resource) -> str | None:
    try:
        model = get_fhir_model_class(resource["resourceType"])
    except (KeyError, ValueError, TypeError):
        return f"unknown resource type {str(resource.get('resourceType'))[:40]!r}"
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))[:80]
        return f"not valid FHIR R4 ({exc.error_count()} error(s), first at {where or 'root'})"
    except (ValueError, TypeError, RecursionError):
        return "not valid FHIR R4"
    return None


_VALIDATION_MEMO: Memo[str | None] = Memo(_validate)

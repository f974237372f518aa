"""Index raw FHIR JSON by type, code and reference before anything is modelled.

A 2,000-resource prefetch must stay fast, so nothing here builds a pydantic model: rules only
pay for parsing the handful of resources they actually read (see ``ResourceIndex.model``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

Resource = dict[str, Any]


class ResourceIndex:
    """Resources by type, by ``system|code`` of their main code, and by ``Type/id`` reference."""

    def __init__(self, resources: Iterable[Resource] = ()) -> None:
        self._by_type: dict[str, list[Resource]] = defaultdict(list)
        self._by_ref: dict[str, Resource] = {}
        self._seen: set[str] = set()
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
        for contained in container.get("contained") or []:
            if isinstance(contained, dict) and contained.get("id") == reference[1:]:
                return contained
        return None
    return index.get(reference)

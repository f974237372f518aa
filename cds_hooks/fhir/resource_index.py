"""Index raw FHIR JSON by type, code and reference before anything is modelled.

A 2,000-resource prefetch must stay fast, so nothing here builds a pydantic model: rules only
pay for parsing the handful of resources they actually read (see ``ResourceIndex.problem``).

Validation reads what the rules need, not the whole resource: a resource is usable when the elements
the rules read (``RULE_ELEMENTS``) are valid FHIR R4, even if another element is not (the CDS Hooks
Sandbox sends a draft ``MedicationRequest.category`` as one object instead of a list). Such elements are
set aside and logged at WARNING, with the reason and never the resource's content. On the request path
only the read elements are modelled (``validate_read``); the whole-resource check behind that warning
runs in a background thread (``cds_hooks.fhir.deferred_validation``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import typing
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from cds_hooks.fhir.concept_memo import Memo
from cds_hooks.fhir.deferred_validation import DeferredValidator, defer, drain_at_exit
from cds_hooks.fhir.element_validation import MODEL_ERRORS, ElementMemo
from cds_hooks.fhir.json_access import objects

Resource = dict[str, Any]

log = logging.getLogger(__name__)

# The top-level elements the clinical rules read, per resource type (``name[x]``: every choice of a
# choice element). An invalid element outside this list is set aside instead of making the whole resource
# unusable. Keep in step with what clinical/facts/* and clinical/orders.py read; a type not listed here
# must be valid as a whole.
RULE_ELEMENTS: dict[str, frozenset[str]] = {
    "MedicationRequest": frozenset(
        {"resourceType", "id", "contained", "status", "intent", "subject", "medication[x]"}
        | {"dosageInstruction", "authoredOn", "dispenseRequest"}
    ),
    "MedicationStatement": frozenset(
        {"resourceType", "id", "contained", "status", "subject", "medication[x]", "dosage", "effective[x]"}
    ),
    "Medication": frozenset({"resourceType", "id", "code", "ingredient", "form"}),
    "Observation": frozenset(
        {"resourceType", "id", "status", "code", "subject", "effective[x]", "issued", "value[x]"}
        | {"interpretation", "referenceRange"}
    ),
    "Condition": frozenset(
        {"resourceType", "id", "clinicalStatus", "verificationStatus", "code", "subject"}
        | {"onset[x]", "recordedDate"}
    ),
    "ServiceRequest": frozenset(
        {"resourceType", "id", "status", "intent", "code", "subject", "authoredOn", "occurrence[x]"}
    ),
}
# Rounds of "set aside the invalid unread elements, validate again": a model's whole-resource checks
# (required elements, choice types) only run once its elements are valid.
MAX_SET_ASIDE_ROUNDS = 3


def load_model_classes(resource_types: Iterable[str] = tuple(RULE_ELEMENTS)) -> int:
    """Import the model class of every element type ``resource_types`` can hold; how many classes.

    fhir.resources imports an element's class the first time a resource carrying that element is
    validated (``meta`` alone costs several milliseconds), which a worker's first request would otherwise
    pay for. Called by the worker warm-up; the classes stay loaded for the process's life."""
    seen: set[type] = set()
    pending = [get_fhir_model_class(name) for name in resource_types]
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        annotations = [field.annotation for field in model.model_fields.values()]
        while annotations:
            annotation = annotations.pop()
            annotations.extend(typing.get_args(annotation))
            lazy = getattr(annotation, "get_model_klass", None) if isinstance(annotation, type) else None
            if lazy is not None:
                pending.append(lazy())
    return len(seen)


@dataclass(frozen=True)
class Validation:
    """The outcome of validating one resource: ``problem`` when the rules cannot use it, else the
    elements set aside (name and why), if any."""

    problem: str | None = None
    set_aside: tuple[tuple[str, str], ...] = ()

    def set_aside_text(self) -> str:
        return ", ".join(f"{name} ({why})" for name, why in self.set_aside)


@dataclass
class RecordMemo:
    """What earlier calls with the same record content worked out, shared by their indexes (the
    service's evaluation cache hands one to an index; see ``cds_hooks.hooks.evaluation_cache``):
    ``inputs`` for the rules by (patient, resources rejected so far), validations by ``Type/id``."""

    inputs: dict[Any, Any]
    validations: dict[str, tuple[Validation, bool]]


class ResourceIndex:
    """Resources by type, by ``system|code`` of their main code, and by ``Type/id`` reference."""

    def __init__(self, resources: Iterable[Resource] = ()) -> None:
        self._by_type: dict[str, list[Resource]] = defaultdict(list)
        self._by_ref: dict[str, Resource] = {}
        self._validations: dict[int, Validation] = {}
        self._rejected: dict[int, str] = {}
        # Set (by the service) once the index holds the whole record; any later ``add`` drops it.
        self.memo: RecordMemo | None = None
        self.extend(resources)

    def add(self, resource: Resource) -> None:
        """Add one resource; a second copy of the same ``Type/id`` (from two prefetch keys) is dropped."""
        self.extend((resource,))

    def extend(self, resources: Iterable[Resource]) -> None:
        """Add resources (``add``, one loop for a whole record)."""
        self.memo = None  # the content the memo was found for has changed
        by_ref, by_type = self._by_ref, self._by_type
        for resource in resources:
            if not isinstance(resource, dict):
                continue
            rtype = resource.get("resourceType")
            if not isinstance(rtype, str):
                continue
            rid = resource.get("id")
            if isinstance(rid, str) and rid:
                ref = f"{rtype}/{rid}"
                if ref in by_ref:
                    continue
                by_ref[ref] = resource
            by_type[rtype].append(resource)

    def validation(self, resource: Resource) -> Validation:
        """Validate the elements the rules read of one resource against its FHIR R4 (R4B) model, once per
        index; a usable resource with other elements goes to the background whole-resource check, which
        logs (WARNING) the elements it sets aside."""
        key = id(resource)
        if key not in self._validations:
            ref = self._own_ref(resource)
            memo = self.memo if ref is not None else None
            known = memo.validations.get(ref) if memo is not None and ref is not None else None
            result, unread = known or validate_read(resource)
            if memo is not None and ref is not None and known is None:
                memo.validations[ref] = (result, unread)
            self._validations[key] = result
            if unread and not result.problem:
                defer(resource, DEFERRED)
        return self._validations[key]

    def _own_ref(self, resource: Resource) -> str | None:
        """``Type/id`` of a resource of this index (not of a draft order that merely shares its id)."""
        ref = f"{resource.get('resourceType')}/{resource.get('id')}"
        return ref if self._by_ref.get(ref) is resource else None

    def rejected_refs(self) -> frozenset[str]:
        """``Type/id`` of every resource rejected so far: what the facts built now depend on."""
        by_id = {id(r): ref for ref, r in self._by_ref.items()} if self._rejected else {}
        return frozenset(by_id.get(key, f"#{key}") for key in self._rejected)

    def problem(self, resource: Resource) -> str | None:
        """``None`` when the rules can use the resource, else a short reason (never its content)."""
        return self.validation(resource).problem

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
        found = self._by_ref.get(reference)  # the common case: already "Type/id"
        if found is not None:
            return found
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


def validate_read(resource: Resource) -> tuple[Validation, bool]:
    """The request path's check: the resource's ``RULE_ELEMENTS`` only (a type not listed: the whole
    resource), and whether it has other elements (which the background check covers).

    The same outcome as :func:`validate` for whether the rules can use it: every element a model
    requires is a read one, and an error elsewhere never makes a resource unusable."""
    read = RULE_ELEMENTS.get(resource.get("resourceType"))  # type: ignore[arg-type]
    if read is None:
        return validate(resource), False
    subset = {k: v for k, v in resource.items() if _is_read_key(k, read)}
    return _validate(subset), len(subset) < len(resource)


def _check_whole(resource: Resource) -> None:
    """The background check: log the elements the whole-resource validation sets aside."""
    result = validate(resource)
    if result.set_aside and not result.problem:
        log.warning(
            "%s: set aside %s; the rules read only their own elements",
            str(resource.get("resourceType"))[:40],
            result.set_aside_text(),
        )


def validate(resource: Resource) -> Validation:
    """Validation is a pure function of the resource's content, and EHRs send the same resources again
    and again (every chart open, every order in a session): results are memoised by a content digest."""
    try:
        content = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return _validate(resource)
    return _VALIDATION_MEMO.get(hashlib.blake2b(content, digest_size=16).digest(), resource)


def _element(loc: tuple[Any, ...]) -> str | None:
    """The JSON element name an error location starts at (pydantic field names: ``status__ext`` is
    ``_status``, reserved words carry ``_fhir``)."""
    if not loc or not isinstance(loc[0], str):
        return None
    name = loc[0].removesuffix("__ext").removesuffix("_fhir")
    return name or None


@functools.lru_cache(maxsize=4096)  # JSON keys are few (hostile ones are bounded by the cache)
def _is_read_key(key: str, read: frozenset[str]) -> bool:
    """Whether a top-level JSON key (``_status``: the extension of ``status``) is one the rules read."""
    return _is_read(key[1:] if key[:1] == "_" else key, read)


def _is_read(element: str, read: frozenset[str]) -> bool:
    if element in read:
        return True
    return any(
        r.endswith("[x]") and element.startswith(r[:-3]) and element[len(r) - 3 : len(r) - 2].isupper()
        for r in read
    )


def _is_read_loc(loc: tuple[Any, ...], read: frozenset[str]) -> bool:
    """Whether an error at ``loc`` touches what the rules read (an error at the root always does)."""
    element = _element(loc)
    return element is None or _is_read(element, read)


def _validate(resource: Resource) -> Validation:
    try:
        model = get_fhir_model_class(resource["resourceType"])
    except (KeyError, ValueError, TypeError):
        return Validation(f"unknown resource type {str(resource.get('resourceType'))[:40]!r}")
    if ELEMENTS.is_valid(model, resource):  # the common case, element by element from the memo
        return Validation(None, ())
    return validate_model(model, resource)


def validate_model(model: Any, resource: Resource) -> Validation:
    """Validate ``resource`` as one ``model``, setting aside invalid elements the rules do not read; what
    :class:`ElementMemo` falls back to, and so the reference its fast path must agree with."""
    read = RULE_ELEMENTS.get(str(resource["resourceType"]))
    candidate, set_aside = resource, []
    for _ in range(MAX_SET_ASIDE_ROUNDS):
        try:
            model.model_validate(candidate)
        except ValidationError as exc:
            errors = exc.errors()
            elements = {_element(tuple(e.get("loc", ()))): str(e.get("type", ""))[:40] for e in errors}
            blocking = [e for e in errors if read is None or _is_read_loc(tuple(e.get("loc", ())), read)]
            if blocking:
                where = ".".join(str(p) for p in blocking[0].get("loc", ()))[:80]
                return Validation(
                    f"not valid FHIR R4 ({len(blocking)} error(s), first at {where or 'root'})",
                    tuple(set_aside),
                )
            # Unknown element names come from the record: never echoed into the log.
            set_aside += sorted(
                (
                    str(e) if e in model.model_fields else "an element unknown to R4",
                    f"not valid FHIR R4: {why}",
                )
                for e, why in elements.items()
            )
            dropped = {str(e) for e in elements} | {f"_{e}" for e in elements}
            candidate = {k: v for k, v in candidate.items() if k not in dropped}
        except MODEL_ERRORS:  # not a ValidationError (handled above): unusable as a whole
            return Validation("not valid FHIR R4", tuple(set_aside))
        else:
            return Validation(None, tuple(set_aside))
    return Validation("not valid FHIR R4 (too many invalid elements)", tuple(set_aside))


_VALIDATION_MEMO: Memo[Validation] = Memo(_validate)
ELEMENTS = ElementMemo()
DEFERRED = DeferredValidator(_check_whole)
drain_at_exit(DEFERRED)

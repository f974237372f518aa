"""Validate a resource with fhir.resources element by element, each complex element memoised by content.

A new patient's resources are new, but most of their elements are not: the same LOINC code, reference
range, interpretation, route and dose recur across every patient of a site, and a patient's ``subject``
reference recurs across all of that patient's resources. fhir.resources builds a pydantic model for
every nested element (about a dozen per resource), which made validating the cited resources the largest
part of an evaluation. Here each top-level complex element (or each item of a list of them) is validated
once per distinct content by its own model class; the resource's model then validates its primitives
and whole-resource rules (required elements, one value per choice) with each such element replaced by a
stand-in instance of its class, which pydantic accepts without looking inside (the memo keeps whether
an element is valid, not its model: a model instance costs about 5 KB).

Only a fully valid resource takes this path: when any element fails, or anything is unusual, the caller
validates the resource the ordinary way, so the errors (and what is set aside) are exactly as before.
"""

from __future__ import annotations

import functools
import hashlib
import typing
from typing import Any

import orjson
from pydantic import ValidationError

MAX_ELEMENTS = 20_000  # distinct element contents kept (~0.2 KB each); emptied when full (hostile input)
# What a fhir.resources model raises on damaged input: more than ValidationError (a contained resource of
# an unknown or empty type is a KeyError inside its type lookup).
MODEL_ERRORS = (ValidationError, ValueError, TypeError, LookupError, AttributeError, RecursionError)

# The JSON name of a top-level element → (its model class, whether the element is a list).
ElementFields = dict[str, tuple[type, bool]]


@functools.cache
def complex_elements(model: type) -> ElementFields:
    """The top-level elements of ``model`` whose values are FHIR elements with a model of their own
    (``contained`` excluded: its items are resources of any type, which the resource's model dispatches)."""
    fields: ElementFields = {}
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        annotation, many = field.annotation, False
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if args and typing.get_origin(annotation) is not None:
            annotation = args[0] if len(args) == 1 else None
        if typing.get_origin(annotation) is list:  # typing.List[X] too
            annotation, many = typing.get_args(annotation)[0], True
        lazy = getattr(annotation, "get_model_klass", None) if isinstance(annotation, type) else None
        if lazy is None:
            continue
        klass = lazy()
        if klass.__name__ == "Resource":
            continue
        fields[field.alias or name] = (klass, many)
    return fields


@functools.cache
def stand_in(klass: type) -> Any:
    """One instance of ``klass`` built without validation: what the resource's model is given in place
    of an element already shown valid (it checks the instance's class, not its content)."""
    return klass.model_construct()  # type: ignore[attr-defined]


class ElementMemo:
    """Whether an element is valid, by (model class, digest of its JSON); thread-safe enough (a race only
    validates an element twice)."""

    def __init__(self, max_entries: int = MAX_ELEMENTS) -> None:
        self._max = max_entries
        self._valid: dict[tuple[type, bytes], bool] = {}  # (class, 16-byte BLAKE2b digest) → valid

    def __len__(self) -> int:
        return len(self._valid)

    def element(self, klass: type, value: Any) -> bool:
        """Whether ``value`` is a valid ``klass``."""
        if not isinstance(value, dict):
            return False
        try:
            key = (klass, hashlib.blake2b(orjson.dumps(value), digest_size=16).digest())
        except (TypeError, orjson.JSONEncodeError):
            return False
        valid = self._valid.get(key)
        if valid is None:
            try:
                klass.model_validate(value)  # type: ignore[attr-defined]
                valid = True
            except MODEL_ERRORS:
                valid = False
            if len(self._valid) >= self._max:
                self._valid.clear()
            self._valid[key] = valid
        return valid

    def is_valid(self, model: type, resource: dict[str, Any]) -> bool:
        """True when ``resource`` is a valid ``model``; False means "not shown valid here" (validate it
        the ordinary way to learn why)."""
        fields = complex_elements(model)
        candidate = dict(resource)
        for key, value in resource.items():
            spec = fields.get(key)
            if spec is None:
                continue
            klass, many = spec
            if value is None:  # left to the resource's model, as the whole validation does
                continue
            if many:
                if not isinstance(value, list) or not all(self.element(klass, item) for item in value):
                    return False
                candidate[key] = [stand_in(klass)] * len(value)
            elif self.element(klass, value):
                candidate[key] = stand_in(klass)
            else:
                return False
        try:
            model.model_validate(candidate)  # type: ignore[attr-defined]
        except MODEL_ERRORS:
            return False
        return True

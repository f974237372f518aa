"""Memoised classification of FHIR CodeableConcepts.

Records repeat the same few hundred concepts (LOINC codes, drug names, diagnoses) thousands of times, and
across patients; value-set matching (regexes, text patterns) is the costliest part of building facts. A
classification depends only on the concept's codings and text, so it is computed once per distinct
concept and knowledge (the memo lives on a classifier built once per ``Knowledge``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

MAX_ENTRIES = 50_000  # a bound, so hostile input cannot grow the memo without limit


def concept_key(concept: Any) -> Hashable:
    """What a classification can depend on: text and (system, code, display) of each coding (a part
    that is not a string counts as absent). Called for most resources of every request: no helpers."""
    if not isinstance(concept, dict):
        return None
    codings = concept.get("coding")
    parts = []
    if isinstance(codings, list):
        for c in codings:
            if isinstance(c, dict):
                system, code, display = c.get("system"), c.get("code"), c.get("display")
                parts.append(
                    (
                        system if isinstance(system, str) else None,
                        code if isinstance(code, str) else None,
                        display if isinstance(display, str) else None,
                    )
                )
    text = concept.get("text")
    return (text if isinstance(text, str) else None, tuple(parts))


class Memo(Generic[T]):
    """A bounded dict cache for a pure function of a hashable key (thread-safe enough: a race only
    computes a value twice)."""

    def __init__(self, compute: Callable[..., T]):
        self._compute = compute
        self._values: dict[Hashable, T] = {}

    def get(self, key: Hashable, *args: Any) -> T:
        try:
            return self._values[key]
        except KeyError:
            pass
        value = self._compute(*args)
        if len(self._values) >= MAX_ENTRIES:
            self._values.clear()
        self._values[key] = value
        return value

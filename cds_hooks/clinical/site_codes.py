"""A site's own codes, mapped to the standard codes the knowledge lists: a FHIR ConceptMap file named by
``CDS_HOOKS_SITE_CONCEPT_MAP`` (``cds-hooks survey`` drafts one from an export).

Each mapping ``local system|code → LOINC / RxNorm / ATC code`` adds the local code to every value set
that lists the target code, so the rules read the local code exactly as they read the standard one,
without editing ``knowledge/``. Only mappings whose equivalence says the codes mean the same
(``equivalent``, ``equal``; not ``wider``, ``inexact``, …) are applied; a target no value set lists is
ignored. A file that cannot be read stops the start-up with a message naming it, like any knowledge error.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

SITE_CONCEPT_MAP_ENV = "CDS_HOOKS_SITE_CONCEPT_MAP"
APPLIED_EQUIVALENCES = frozenset({"equivalent", "equal"})


class SiteMapError(ValueError):
    """The site ConceptMap is missing or malformed; the message names the file."""


def read_mappings(path: Path) -> list[tuple[str, str, str, str]]:
    """``(source system, source code, target system, target code)`` of every applied mapping."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SiteMapError(
            f"{path}: the site ConceptMap is not readable JSON ({type(exc).__name__})"
        ) from exc
    if not isinstance(document, dict) or document.get("resourceType") != "ConceptMap":
        raise SiteMapError(f"{path}: resourceType must be 'ConceptMap'")
    mappings = []
    for i, group in enumerate(document.get("group") or []):
        source, target = (
            (group.get("source"), group.get("target")) if isinstance(group, dict) else (None, None)
        )
        if not isinstance(source, str) or not isinstance(target, str):
            raise SiteMapError(f"{path}: group[{i}] needs a source and a target system")
        for element in group.get("element") or []:
            code = element.get("code") if isinstance(element, dict) else None
            for mapped in element.get("target") or [] if isinstance(element, dict) else []:
                equivalence = mapped.get("equivalence", "equivalent") if isinstance(mapped, dict) else None
                to = mapped.get("code") if isinstance(mapped, dict) else None
                if isinstance(code, str) and isinstance(to, str) and equivalence in APPLIED_EQUIVALENCES:
                    mappings.append((source, code, target, to))
    return mappings


def apply_site_map(
    valuesets: Mapping[str, Any], env: Mapping[str, str], normalise_code: Callable[[str, str], str]
) -> dict[str, Any]:
    """``valuesets`` with the site's local codes added where their targets are listed (unchanged when
    ``CDS_HOOKS_SITE_CONCEPT_MAP`` is not set); ``normalise_code`` is the value sets' code form."""
    configured = env.get(SITE_CONCEPT_MAP_ENV)
    if not configured:
        return dict(valuesets)
    added: dict[str, dict[str, list[str]]] = {}
    for source, code, target, to in read_mappings(Path(configured)):
        for vs_id, vs in valuesets.items():
            if normalise_code(target, to) in vs.exact.get(target, ()):
                added.setdefault(vs_id, {}).setdefault(source, []).append(normalise_code(source, code))
    result = dict(valuesets)
    for vs_id, by_system in added.items():
        vs = valuesets[vs_id]
        ordered = {s: tuple(c) for s, c in vs.ordered_codes.items()}
        exact = {s: set(c) for s, c in vs.exact.items()}
        for system, codes in by_system.items():
            ordered[system] = tuple(dict.fromkeys([*ordered.get(system, ()), *codes]))
            exact[system] = exact.get(system, set()) | set(codes)
        result[vs_id] = dataclasses.replace(
            vs,
            ordered_codes=MappingProxyType(ordered),
            exact=MappingProxyType({s: frozenset(c) for s, c in exact.items()}),
        )
    return result

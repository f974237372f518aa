"""Clinical knowledge from ``knowledge/``: value sets, lab kinds, thresholds, condition groups, workup.

The knowledge is data a clinician reviews without reading Python. It is loaded and validated once at
start-up: a reviewed copy with a typo must stop the service with a message naming the file and the
problem, not misfire on patients later. Matching is precompiled (a set lookup per code system for
exact codes, one compiled regex per code system for filters) because it runs per coding for
thousands of resources.

Matching semantics a rules author relies on:

- A coding matches when its ``system`` is exactly a system of the value set (no aliases) and its code
  is listed or matches a ``regex`` filter of that system. Filters use ``re.search``: a pattern
  without ``$`` is a prefix match (``^E78`` = "starts with E78"). As in FHIR, includes are ORed; to
  keep that meaning unambiguous an include holds either concepts or exactly one filter.
- ICD-10-CM codes are compared in dotted upper-case form; a code sent without the dot (``M329``,
  ``E88810``) gets its dot back after the third character first. ATC codes are compared upper-case.
- Text patterns (value-set extensions) are case-insensitive regexes matched with ``re.search``
  against ``code.text`` and every ``coding.display``. A text-exclude pattern matching *any* text of
  the same concept vetoes the text match of the whole concept; it never vetoes a code match.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import tomllib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cds_hooks.clinical.site_codes import SiteMapError, apply_site_map
from cds_hooks.clinical.units import Conversion, normalise_unit
from cds_hooks.clinical.wording import Wording, WordingError, load_wording

BASE_URL = "https://immune-ir-cds.example.org/fhir"
VALUESET_URL_PREFIX = f"{BASE_URL}/ValueSet/"
EXT_TEXT_PATTERN = f"{BASE_URL}/StructureDefinition/text-pattern"
EXT_TEXT_EXCLUDE = f"{BASE_URL}/StructureDefinition/text-exclude-pattern"
EXT_SOURCE = f"{BASE_URL}/StructureDefinition/source"
LOCAL_TESTS_SYSTEM = f"{BASE_URL}/CodeSystem/local-tests"

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
UCUM = "http://unitsofmeasure.org"

KNOWLEDGE_DIR_ENV = "CDS_HOOKS_KNOWLEDGE_DIR"
THRESHOLD_ENV_PREFIX = "CDS_HOOKS_THRESHOLD_"

# Every code/filter names its provenance, starting with one of these words (see the reference).
SOURCE_STATUSES = ("verified", "recall", "unverified", "inference", "design")
_SOURCE_RE = re.compile(rf"^({'|'.join(SOURCE_STATUSES)})\b", re.IGNORECASE)
_OUR_EXTENSIONS = frozenset({EXT_TEXT_PATTERN, EXT_TEXT_EXCLUDE, EXT_SOURCE})

# What the code depends on: a reviewed copy missing one of these cannot run the rules.
REQUIRED_VALUESETS = frozenset(
    {
        # labs
        "glucose", "glucose-fasting", "ogtt-2h", "hba1c", "insulin", "c-peptide", "insulin-antibody",
        "insulin-receptor-antibody", "ana", "body-weight",
        # medications
        "insulin-any", "insulin-animal", "insulin-human-or-analogue", "insulin-rapid-short",
        "insulin-intermediate", "insulin-premixed", "insulin-long", "glucocorticoid-systemic",
        "route-non-systemic", "glucocorticoid-non-systemic-form", "insulin-autoimmune-triggers",
        "insulin-secretagogues",
        # conditions
        "diabetes", "type-2-diabetes", "sle", "sjogren", "rheumatoid-arthritis", "autoimmune-thyroid",
        "addison", "autoimmune-polyglandular", "ataxia-telangiectasia", "pcos", "metabolic-syndrome",
        "hyperlipidaemia", "acromegaly", "cushing", "ckd-uraemia", "obesity", "pregnancy",
        "type-b-insulin-resistance", "acanthosis-nigricans", "adrenal-insufficiency", "bmi",
    }
)  # fmt: skip
REQUIRED_LAB_KINDS = frozenset(
    {
        "glucose", "glucose_fasting", "ogtt_2h", "hba1c", "insulin", "c_peptide", "insulin_antibody",
        "insulin_receptor_antibody", "ana", "body_weight", "bmi",
    }
)  # fmt: skip


class KnowledgeError(ValueError):
    """The knowledge directory is missing, malformed or inconsistent; the message names file and problem."""


# ----------------------------------------------------------------------------------------------------
# Value sets


def normalise_code(system: str, code: str) -> str:
    """The comparison form of a code: ICD-10-CM dotted upper case (``m329`` → ``M32.9``), ATC upper case."""
    code = code.strip()
    if system == ICD10CM:
        code = "".join(code.split()).upper().rstrip(".")
        if "." not in code and len(code) > 3:
            code = f"{code[:3]}.{code[3:]}"
        return code
    if system == ATC:
        return "".join(code.split()).upper()
    return code


@dataclass(frozen=True, eq=False)
class ValueSet:
    """A compiled value set: exact codes and regex filters per code system, plus text patterns."""

    id: str
    url: str
    title: str
    description: str
    ordered_codes: Mapping[str, tuple[str, ...]] = field(repr=False)  # system -> codes, file order
    exact: Mapping[str, frozenset[str]] = field(repr=False)  # system -> normalised codes
    filters: Mapping[str, re.Pattern[str]] = field(repr=False)  # system -> combined regex
    text_pattern: re.Pattern[str] | None = field(default=None, repr=False)
    text_exclude: re.Pattern[str] | None = field(default=None, repr=False)

    @property
    def systems(self) -> frozenset[str]:
        """Code systems this value set lists codes or filters for."""
        return frozenset(self.exact) | frozenset(self.filters)

    def codes(self, system: str) -> list[str]:
        """Exact codes listed for ``system`` (filters not expanded), e.g. for prefetch search templates."""
        return list(self.ordered_codes.get(system, ()))

    def exact_codes(self) -> dict[str, tuple[str, ...]]:
        """All exact codes by system (normalised form, file order), for building lookup tables."""
        return dict(self.ordered_codes)

    def matches_coding(self, system: str | None, code: str | None) -> bool:
        """True when ``system|code`` is listed or matches a regex filter of that system."""
        if not isinstance(system, str) or not isinstance(code, str) or not code.strip():
            return False
        exact = self.exact.get(system)
        pattern = self.filters.get(system)
        if exact is None and pattern is None:
            return False
        normalised = normalise_code(system, code)
        if exact is not None and normalised in exact:
            return True
        return pattern is not None and pattern.search(normalised) is not None

    def matches_text(self, text: str | None) -> bool:
        """True when ``text`` matches a text pattern and no text-exclude pattern."""
        return self.matches_texts((text,) if isinstance(text, str) else ())

    def matches_texts(self, texts: Iterable[str | None]) -> bool:
        """Text match over all names of one concept: an exclude hit on any of them vetoes the match."""
        if self.text_pattern is None:
            return False
        present = [t for t in texts if isinstance(t, str) and t.strip()]
        if not present:
            return False
        if self.text_exclude is not None and any(self.text_exclude.search(t) for t in present):
            return False
        return any(self.text_pattern.search(t) for t in present)

    def matches_concept(self, concept: Mapping[str, Any] | None) -> bool:
        """Raw FHIR CodeableConcept JSON: any coding matches by code, or its text/displays match by text."""
        if not isinstance(concept, Mapping):
            return False
        texts: list[str] = []
        text = concept.get("text")
        if isinstance(text, str):
            texts.append(text)
        codings = concept.get("coding")
        if isinstance(codings, list):
            for coding in codings:
                if not isinstance(coding, Mapping):
                    continue
                if self.matches_coding(coding.get("system"), coding.get("code")):
                    return True
                display = coding.get("display")
                if isinstance(display, str):
                    texts.append(display)
        return self.matches_texts(texts)


def union(valuesets: Iterable[ValueSet], vs_id: str = "union") -> ValueSet:
    """One value set that matches whatever any of ``valuesets`` matches; their text exclusions are left
    out, so it may match more, never less. A conservative pre-check: when it does not match a concept,
    none of them does, so the common unrelated concept (vital signs, antihypertensives, a sprain) costs
    one look-up per coding and one combined regex per name instead of every value set's checks. A
    worker's first request meets dozens of such concepts its memos have never seen."""
    sets = list(valuesets)
    ordered: dict[str, list[str]] = {}
    filters: dict[str, list[str]] = {}
    for vs in sets:
        for system, codes in vs.ordered_codes.items():
            ordered.setdefault(system, []).extend(codes)
        for system, pattern in vs.filters.items():
            filters.setdefault(system, []).append(pattern.pattern)
    texts = [vs.text_pattern.pattern for vs in sets if vs.text_pattern is not None]
    return ValueSet(
        id=vs_id,
        url="",
        title=f"Union of {', '.join(vs.id for vs in sets)}",
        description="Built in memory as a pre-check; not loaded from a file.",
        ordered_codes=MappingProxyType({s: tuple(dict.fromkeys(c)) for s, c in ordered.items()}),
        exact=MappingProxyType(
            {s: frozenset().union(*(vs.exact.get(s, ()) for vs in sets)) for s in ordered}
        ),
        filters=MappingProxyType(
            {s: re.compile("|".join(f"(?:{p})" for p in ps)) for s, ps in filters.items()}
        ),
        text_pattern=re.compile("|".join(f"(?:{p})" for p in texts), re.IGNORECASE) if texts else None,
    )


def _fail(path: Path, where: str, problem: str) -> KnowledgeError:
    return KnowledgeError(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")


def _compile(path: Path, where: str, pattern: Any, flags: int = 0) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise _fail(path, where, "a regular expression (non-empty string) is required")
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise _fail(path, where, f"invalid regular expression {pattern!r}: {exc}") from exc


def _combine(path: Path, where: str, patterns: list[str], flags: int = 0) -> re.Pattern[str] | None:
    if not patterns:
        return None
    for i, p in enumerate(patterns):
        _compile(path, f"{where}[{i}]", p, flags)
    return _compile(path, where, "|".join(f"(?:{p})" for p in patterns), flags)


def _source(path: Path, where: str, element: Mapping[str, Any]) -> str:
    """The provenance string of a concept/filter/include; required so every code can be reviewed."""
    for ext in element.get("extension") or []:
        if isinstance(ext, Mapping) and ext.get("url") == EXT_SOURCE:
            value = ext.get("valueString")
            if not isinstance(value, str) or not _SOURCE_RE.match(value.strip()):
                raise _fail(
                    path,
                    where,
                    f"source must be a valueString starting with one of {', '.join(SOURCE_STATUSES)}",
                )
            return value
    raise _fail(path, where, f"missing source extension ({EXT_SOURCE})")


def _load_valueset(path: Path) -> ValueSet:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, "", f"not readable JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("resourceType") != "ValueSet":
        raise _fail(path, "", "resourceType must be 'ValueSet'")
    vs_id = data.get("id")
    if vs_id != path.stem:
        raise _fail(path, "id", f"must equal the file name {path.stem!r}, got {vs_id!r}")
    url = data.get("url")
    if url != VALUESET_URL_PREFIX + vs_id:
        raise _fail(path, "url", f"must be {VALUESET_URL_PREFIX + vs_id!r}, got {url!r}")
    for key in ("title", "description", "status"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise _fail(path, key, "a non-empty string is required")

    text_patterns: list[str] = []
    text_excludes: list[str] = []
    for i, ext in enumerate(data.get("extension") or []):
        where = f"extension[{i}]"
        if not isinstance(ext, Mapping):
            raise _fail(path, where, "must be an object")
        ext_url = ext.get("url")
        if ext_url == EXT_TEXT_PATTERN:
            text_patterns.append(_compile(path, where, ext.get("valueString"), re.IGNORECASE).pattern)
        elif ext_url == EXT_TEXT_EXCLUDE:
            text_excludes.append(_compile(path, where, ext.get("valueString"), re.IGNORECASE).pattern)
        elif (
            isinstance(ext_url, str) and ext_url.startswith(f"{BASE_URL}/") and ext_url not in _OUR_EXTENSIONS
        ):
            raise _fail(path, where, f"unknown project extension {ext_url!r} (typo?)")

    compose = data.get("compose")
    if not isinstance(compose, Mapping):
        raise _fail(path, "compose", "required")
    if "exclude" in compose:
        raise _fail(
            path, "compose.exclude", "not supported: narrow the include or use a text-exclude-pattern"
        )
    includes = compose.get("include")
    if not isinstance(includes, list) or not includes:
        raise _fail(path, "compose.include", "a non-empty list is required")

    codes: dict[str, list[str]] = {}
    filters: dict[str, list[str]] = {}
    for i, include in enumerate(includes):
        where = f"compose.include[{i}]"
        if not isinstance(include, Mapping):
            raise _fail(path, where, "must be an object")
        system = include.get("system")
        if not isinstance(system, str) or not system:
            raise _fail(path, f"{where}.system", "required (includes of other value sets are not supported)")
        if "valueSet" in include:
            raise _fail(path, f"{where}.valueSet", "not supported: list the codes")
        if "concept" not in include and "filter" not in include:
            raise _fail(
                path,
                where,
                "needs 'concept' or 'filter': an include of a whole code system is never meant "
                '(use "concept": [] with a source extension as a placeholder)',
            )
        if "concept" in include and "filter" in include:
            raise _fail(path, where, "FHIR vsd-3: 'concept' and 'filter' cannot share an include; split it")
        if len(include.get("filter") or []) > 1:
            raise _fail(
                path, f"{where}.filter", "one filter per include (FHIR ANDs the filters of one include)"
            )
        concepts = include.get("concept", [])
        if not isinstance(concepts, list):
            raise _fail(path, f"{where}.concept", "must be a list")
        if not concepts and "filter" not in include:
            _source(path, where, include)  # an empty placeholder must say why it is empty
        system_codes = codes.setdefault(system, [])
        for j, concept in enumerate(concepts):
            cwhere = f"{where}.concept[{j}]"
            if not isinstance(concept, Mapping):
                raise _fail(path, cwhere, "must be an object")
            code = concept.get("code")
            if not isinstance(code, str) or not code.strip():
                raise _fail(path, f"{cwhere}.code", "a non-empty string is required")
            _source(path, cwhere, concept)
            system_codes.append(normalise_code(system, code))
        filter_list = include.get("filter", [])
        if not isinstance(filter_list, list):
            raise _fail(path, f"{where}.filter", "must be a list")
        for j, flt in enumerate(filter_list):
            fwhere = f"{where}.filter[{j}]"
            if not isinstance(flt, Mapping):
                raise _fail(path, fwhere, "must be an object")
            if flt.get("property") != "code" or flt.get("op") != "regex":
                raise _fail(path, fwhere, 'only {"property": "code", "op": "regex"} filters are supported')
            _source(path, fwhere, flt)
            filters.setdefault(system, []).append(_compile(path, f"{fwhere}.value", flt.get("value")).pattern)

    return ValueSet(
        id=vs_id,
        url=url,
        title=data["title"],
        description=data["description"],
        ordered_codes=MappingProxyType({s: tuple(dict.fromkeys(c)) for s, c in codes.items() if c}),
        exact=MappingProxyType({s: frozenset(c) for s, c in codes.items() if c}),
        filters=MappingProxyType(
            {s: p for s, ps in filters.items() if (p := _combine(path, f"compose filters of {s}", ps))}
        ),
        text_pattern=_combine(path, "text-pattern", text_patterns, re.IGNORECASE),
        text_exclude=_combine(path, "text-exclude-pattern", text_excludes, re.IGNORECASE),
    )


def _load_valuesets(directory: Path) -> dict[str, ValueSet]:
    if not directory.is_dir():
        raise KnowledgeError(f"{directory}: value set directory not found")
    valuesets = {p.stem: _load_valueset(p) for p in sorted(directory.glob("*.json"))}
    missing = sorted(REQUIRED_VALUESETS - valuesets.keys())
    if missing:
        raise KnowledgeError(f"{directory}: missing value sets: {', '.join(missing)}")
    return valuesets


# ----------------------------------------------------------------------------------------------------
# Lab kinds and thresholds


@dataclass(frozen=True, eq=False)
class LabKind:
    """One kind of laboratory result: how to recognise it, how long it counts, which units convert."""

    name: str
    valueset: ValueSet
    lookback_days: int
    unit: str | None  # canonical unit; None for qualitative kinds (antibodies, ANA)
    display: str
    units: Mapping[str, Conversion]  # unit string exactly as configured -> conversion
    normalised_units: Mapping[str, Conversion] = field(repr=False)  # normalise_unit(key) -> conversion


@dataclass(frozen=True)
class Threshold:
    """A configurable number; ``value`` may come from an environment override (``overridden_by``)."""

    name: str
    value: float
    unit: str
    source: str
    description: str
    default: float  # the value in thresholds.toml
    overridden_by: str | None = None  # environment variable that set ``value``


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise KnowledgeError(f"{path}: file not found") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise _fail(path, "", f"invalid TOML: {exc}") from exc


def _check_keys(
    path: Path, where: str, table: Mapping[str, Any], allowed: set[str], required: set[str]
) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise _fail(
            path, where, f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
    absent = sorted(required - set(table))
    if absent:
        raise _fail(path, where, f"missing key(s) {', '.join(absent)}")


def _number(path: Path, where: str, value: Any, *, nonzero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(path, where, f"a finite number is required, got {value!r}")
    if nonzero and value == 0:
        raise _fail(path, where, "must not be zero")
    return float(value)


def _text(path: Path, where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, where, "a non-empty string is required")
    return value


def _table(path: Path, where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, where, "must be a table")
    return value


def _load_conversion(path: Path, where: str, raw: Any) -> Conversion:
    table = _table(path, where, raw)
    _check_keys(path, where, table, {"factor", "divide_by", "offset", "source"}, {"source"})
    if ("factor" in table) == ("divide_by" in table):
        raise _fail(path, where, "give exactly one of 'factor' or 'divide_by'")
    if "factor" in table:
        factor = _number(path, f"{where}.factor", table["factor"], nonzero=True)
    else:
        factor = 1.0 / _number(path, f"{where}.divide_by", table["divide_by"], nonzero=True)
    offset = _number(path, f"{where}.offset", table.get("offset", 0.0))
    return Conversion(factor=factor, offset=offset, source=_text(path, f"{where}.source", table["source"]))


def _load_labs(path: Path, valuesets: Mapping[str, ValueSet]) -> dict[str, LabKind]:
    data = _read_toml(path)
    labs: dict[str, LabKind] = {}
    for name, raw in data.items():
        table = _table(path, f"[{name}]", raw)
        _check_keys(
            path, f"[{name}]", table, {"valueset", "display", "lookback_days", "unit", "units"},
            {"valueset", "display", "lookback_days"},
        )  # fmt: skip
        vs_id = table["valueset"]
        if vs_id not in valuesets:
            raise _fail(path, f"[{name}].valueset", f"no value set {vs_id!r} in valuesets/")
        lookback = table["lookback_days"]
        if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback <= 0:
            raise _fail(
                path,
                f"[{name}].lookback_days",
                f"a positive whole number of days is required, got {lookback!r}",
            )
        unit = table.get("unit")
        if unit is not None:
            unit = _text(path, f"[{name}].unit", unit)
        raw_units = _table(path, f"[{name}.units]", table.get("units", {}))
        units: dict[str, Conversion] = {}
        normalised: dict[str, Conversion] = {}
        for unit_string, raw_conv in raw_units.items():
            where = f'[{name}.units."{unit_string}"]'
            conversion = _load_conversion(path, where, raw_conv)
            units[unit_string] = conversion
            key = normalise_unit(unit_string)
            other = normalised.get(key)
            if other is not None and (other.factor, other.offset) != (conversion.factor, conversion.offset):
                raise _fail(
                    path, where, f"normalises to {key!r} like another unit with a different conversion"
                )
            normalised.setdefault(key, conversion)
        if unit is None and units:
            raise _fail(path, f"[{name}]", "units are listed but no canonical 'unit' is set")
        if unit is not None:
            canonical = units.get(unit)
            if canonical is None or (canonical.factor, canonical.offset) != (1.0, 0.0):
                raise _fail(
                    path, f"[{name}.units]", f"the canonical unit {unit!r} must be listed with factor 1"
                )
        labs[name] = LabKind(
            name=name,
            valueset=valuesets[vs_id],
            lookback_days=lookback,
            unit=unit,
            display=_text(path, f"[{name}].display", table["display"]),
            units=MappingProxyType(units),
            normalised_units=MappingProxyType(normalised),
        )
    missing = sorted(REQUIRED_LAB_KINDS - labs.keys())
    if missing:
        raise _fail(path, "", f"missing lab kinds: {', '.join(missing)}")
    return labs


def _load_thresholds(
    path: Path, env: Mapping[str, str], required: Collection[str] = ()
) -> dict[str, Threshold]:
    data = _read_toml(path)
    thresholds: dict[str, Threshold] = {}
    for name, raw in data.items():
        where = f"[{name}]"
        table = _table(path, where, raw)
        keys = {"value", "unit", "source", "description"}
        _check_keys(path, where, table, keys, keys)
        value = _number(path, f"{where}.value", table["value"])
        thresholds[name] = Threshold(
            name=name,
            value=value,
            unit=_text(path, f"{where}.unit", table["unit"]),
            source=_text(path, f"{where}.source", table["source"]),
            description=_text(path, f"{where}.description", table["description"]),
            default=value,
        )
    missing = sorted(set(required) - thresholds.keys())
    if missing:
        raise _fail(path, "", f"missing thresholds: {', '.join(missing)}")

    for variable in sorted(env):
        if not variable.startswith(THRESHOLD_ENV_PREFIX):
            continue
        name = variable[len(THRESHOLD_ENV_PREFIX) :].lower()
        if name not in thresholds:
            raise KnowledgeError(f"environment {variable}: no threshold {name!r} in {path}")
        raw_value = env[variable]
        try:
            value = float(raw_value.strip())
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise KnowledgeError(f"environment {variable}={raw_value!r}: a finite number is required")
        old = thresholds[name]
        thresholds[name] = Threshold(
            name=name, value=value, unit=old.unit, source=old.source, description=old.description,
            default=old.default, overridden_by=variable,
        )  # fmt: skip
    return thresholds


# ----------------------------------------------------------------------------------------------------
# Conditions and workup


@dataclass(frozen=True)
class OtherCause:
    """A non-immune cause of insulin resistance shown as 'other causes to consider'.

    Exactly one of ``valueset`` (a condition value set) or ``medication`` (a medication value set) is set.
    """

    label: str
    valueset: str | None = None
    medication: str | None = None


@dataclass(frozen=True)
class Coding:
    system: str
    code: str
    display: str

    def as_fhir(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}


@dataclass(frozen=True)
class WorkupTest:
    """A test a card may propose, unless a result of a ``satisfied_by`` kind is within that kind's window."""

    kind: str
    code: Coding
    text: str
    satisfied_by: tuple[str, ...]
    source: str
    # Condition value sets in whose presence the test is not proposed (ANA in known SLE, issue 14).
    not_with: tuple[str, ...] = ()


@dataclass(frozen=True)
class Referral:
    text: str
    category: Coding
    performer_type: Coding
    source: str


def _coding(path: Path, where: str, raw: Any) -> Coding:
    table = _table(path, where, raw)
    keys = {"system", "code", "display"}
    _check_keys(path, where, table, keys | {"source"}, keys)
    return Coding(
        system=_text(path, f"{where}.system", table["system"]),
        code=_text(path, f"{where}.code", table["code"]),
        display=_text(path, f"{where}.display", table["display"]),
    )


def _load_conditions(
    path: Path, valuesets: Mapping[str, ValueSet]
) -> tuple[dict[str, frozenset[str]], tuple[OtherCause, ...]]:
    data = _read_toml(path)
    _check_keys(path, "", data, {"groups", "other_causes"}, {"groups", "other_causes"})
    groups: dict[str, frozenset[str]] = {}
    for name, members in _table(path, "[groups]", data["groups"]).items():
        if not isinstance(members, list) or not members:
            raise _fail(path, f"[groups].{name}", "a non-empty list of value-set ids is required")
        for member in members:
            if member not in valuesets:
                raise _fail(path, f"[groups].{name}", f"no value set {member!r} in valuesets/")
        groups[name] = frozenset(members)
    if "autoimmune" not in groups:
        raise _fail(path, "[groups]", "the 'autoimmune' group is required")

    causes: list[OtherCause] = []
    raw_causes = data["other_causes"]
    if not isinstance(raw_causes, list):
        raise _fail(path, "[[other_causes]]", "must be an array of tables")
    for i, raw in enumerate(raw_causes):
        where = f"[[other_causes]] #{i + 1}"
        table = _table(path, where, raw)
        _check_keys(path, where, table, {"valueset", "medication", "label"}, {"label"})
        if ("valueset" in table) == ("medication" in table):
            raise _fail(path, where, "give exactly one of 'valueset' or 'medication'")
        ref = table.get("valueset") or table.get("medication")
        if ref not in valuesets:
            raise _fail(path, where, f"no value set {ref!r} in valuesets/")
        causes.append(
            OtherCause(
                label=_text(path, f"{where}.label", table["label"]),
                valueset=table.get("valueset"),
                medication=table.get("medication"),
            )
        )
    return groups, tuple(causes)


def _load_workup(
    path: Path, labs: Mapping[str, LabKind], valuesets: Mapping[str, ValueSet]
) -> tuple[dict[str, WorkupTest], Referral, Coding]:
    data = _read_toml(path)
    _check_keys(path, "", data, {"lab_category", "tests", "referral"}, {"lab_category", "tests", "referral"})
    lab_category = _coding(path, "[lab_category]", data["lab_category"])
    tests: dict[str, WorkupTest] = {}
    for kind, raw in _table(path, "[tests]", data["tests"]).items():
        where = f"[tests.{kind}]"
        if kind not in labs:
            raise _fail(path, where, f"no lab kind {kind!r} in labs.toml")
        table = _table(path, where, raw)
        keys = {"code", "text", "satisfied_by", "source"}
        _check_keys(path, where, table, keys | {"not_with_conditions"}, keys)
        not_with = table.get("not_with_conditions", [])
        if not isinstance(not_with, list) or any(v not in valuesets for v in not_with):
            raise _fail(
                path, f"{where}.not_with_conditions", "a list of value-set ids in valuesets/ is required"
            )
        satisfied_by = table["satisfied_by"]
        if not isinstance(satisfied_by, list) or not satisfied_by:
            raise _fail(path, f"{where}.satisfied_by", "a non-empty list of lab kinds is required")
        for other in satisfied_by:
            if other not in labs:
                raise _fail(path, f"{where}.satisfied_by", f"no lab kind {other!r} in labs.toml")
        tests[kind] = WorkupTest(
            kind=kind,
            code=_coding(path, f"{where}.code", table["code"]),
            text=_text(path, f"{where}.text", table["text"]),
            satisfied_by=tuple(satisfied_by),
            source=_text(path, f"{where}.source", table["source"]),
            not_with=tuple(not_with),
        )
    raw_referral = _table(path, "[referral]", data["referral"])
    keys = {"text", "category", "performer_type", "source"}
    _check_keys(path, "[referral]", raw_referral, keys, keys)
    referral = Referral(
        text=_text(path, "[referral].text", raw_referral["text"]),
        category=_coding(path, "[referral].category", raw_referral["category"]),
        performer_type=_coding(path, "[referral].performer_type", raw_referral["performer_type"]),
        source=_text(path, "[referral].source", raw_referral["source"]),
    )
    return tests, referral, lab_category


# ----------------------------------------------------------------------------------------------------
# Glucocorticoid equivalents


@dataclass(frozen=True, eq=False)
class GlucocorticoidEquivalent:
    """A systemic glucocorticoid and the dose of it that equals prednisolone 5 mg (glucocorticoids.toml)."""

    name: str
    dose_mg: float  # equals prednisolone 5 mg
    codes: frozenset[tuple[str, str]]  # (system, normalised code): ATC and RxNorm ingredient codes
    pattern: re.Pattern[str]  # whole-word names, case-insensitive
    source: str
    # Its hyperglycaemic effect lasts the whole day and night (dexamethasone): fasting glucose rises too,
    # so checks are fasting as well as afternoon/evening (``all_day_source`` says why).
    all_day: bool = False

    def matches_coding(self, system: Any, code: Any) -> bool:
        if not isinstance(system, str) or not isinstance(code, str):
            return False
        return (system, normalise_code(system, code)) in self.codes

    def matches_text(self, text: str) -> bool:
        return self.pattern.search(text) is not None

    def prednisolone_mg(self, mg: float) -> float:
        """``mg`` of this glucocorticoid as prednisolone-equivalent mg."""
        return mg * PREDNISOLONE_REFERENCE_MG / self.dose_mg


PREDNISOLONE_REFERENCE_MG = 5.0


def _load_glucocorticoids(path: Path) -> tuple[GlucocorticoidEquivalent, ...]:
    data = _read_toml(path)
    equivalents: list[GlucocorticoidEquivalent] = []
    for name, raw in data.items():
        where = f"[{name}]"
        table = _table(path, where, raw)
        keys = {"dose_mg", "atc", "rxnorm", "names", "source", "all_day", "all_day_source"}
        _check_keys(path, where, table, keys, {"dose_mg", "names", "source"})
        all_day = table.get("all_day", False)
        if not isinstance(all_day, bool) or (all_day and "all_day_source" not in table):
            raise _fail(path, f"{where}.all_day", "true or false; true needs an all_day_source")
        dose = _number(path, f"{where}.dose_mg", table["dose_mg"], nonzero=True)
        codes: set[tuple[str, str]] = set()
        for key, system in (("atc", ATC), ("rxnorm", RXNORM)):
            values = table.get(key, [])
            if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
                raise _fail(path, f"{where}.{key}", "a list of codes is required")
            codes |= {(system, normalise_code(system, v)) for v in values}
        names = table["names"]
        if not isinstance(names, list) or not names:
            raise _fail(path, f"{where}.names", "a non-empty list of names (regular expressions) is required")
        words = "|".join(f"(?:{_compile(path, f'{where}.names', n).pattern})" for n in names)
        equivalents.append(
            GlucocorticoidEquivalent(
                name=name,
                dose_mg=dose,
                codes=frozenset(codes),
                pattern=_compile(path, f"{where}.names", rf"\b(?:{words})\b", re.IGNORECASE),
                source=_text(path, f"{where}.source", table["source"]),
                all_day=all_day,
            )
        )
    if "prednisolone" not in {e.name for e in equivalents}:
        raise _fail(path, "", "the reference [prednisolone] is required")
    return tuple(equivalents)


# ----------------------------------------------------------------------------------------------------
# The whole knowledge


@dataclass(frozen=True, eq=False)
class Knowledge:
    """Everything the rules know, loaded once; immutable so it can be shared across requests."""

    root: Path
    valuesets: Mapping[str, ValueSet]
    labs: Mapping[str, LabKind]
    thresholds: Mapping[str, Threshold]
    groups: Mapping[str, frozenset[str]]
    autoimmune_groups: frozenset[str]
    other_causes: tuple[OtherCause, ...]
    workup: Mapping[str, WorkupTest]
    referral: Referral
    lab_category: Coding
    glucocorticoid_equivalents: tuple[GlucocorticoidEquivalent, ...]
    wording: (
        Wording  # card wording (knowledge/cards/, replacements.toml), loaded by cds_hooks.clinical.wording
    )

    def threshold(self, name: str) -> float:
        """The (possibly overridden) value of a threshold; KeyError names an unknown threshold."""
        try:
            return self.thresholds[name].value
        except KeyError:
            raise KeyError(f"unknown threshold {name!r}") from None


def default_knowledge_dir() -> Path:
    """The packaged ``cds_hooks/knowledge`` of an installed wheel, else ``knowledge/`` of the checkout."""
    packaged = resources.files("cds_hooks") / "knowledge"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "knowledge"


def load_knowledge(
    root: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    required_thresholds: Collection[str] = (),
) -> Knowledge:
    """Load and validate ``root`` (default: ``$CDS_HOOKS_KNOWLEDGE_DIR`` or the packaged copy).

    Threshold overrides ``CDS_HOOKS_THRESHOLD_<NAME>`` are read from ``env`` (default ``os.environ``).
    ``required_thresholds`` are those the rules read (``clinical.rules.required_thresholds()``, which
    the service and the command line pass): a knowledge without one of them is refused. Raises
    :class:`KnowledgeError` naming the file and the problem.
    """
    env = os.environ if env is None else env
    if root is None:
        configured = env.get(KNOWLEDGE_DIR_ENV)
        root = Path(configured) if configured else default_knowledge_dir()
    root = Path(root)
    if not root.is_dir():
        raise KnowledgeError(f"{root}: knowledge directory not found")
    try:  # a site's local codes (CDS_HOOKS_SITE_CONCEPT_MAP), added to the value sets of their targets
        valuesets = apply_site_map(_load_valuesets(root / "valuesets"), env, normalise_code)
    except SiteMapError as exc:
        raise KnowledgeError(str(exc)) from exc
    labs = _load_labs(root / "labs.toml", valuesets)
    thresholds = _load_thresholds(root / "thresholds.toml", env, required_thresholds)
    groups, other_causes = _load_conditions(root / "conditions.toml", valuesets)
    workup, referral, lab_category = _load_workup(root / "workup.toml", labs, valuesets)
    glucocorticoid_equivalents = _load_glucocorticoids(root / "glucocorticoids.toml")
    try:
        wording = load_wording(root)
    except (WordingError, KeyError) as exc:
        raise KnowledgeError(f"{root / 'cards'}: card wording: {exc}") from exc
    return Knowledge(
        root=root,
        valuesets=MappingProxyType(valuesets),
        labs=MappingProxyType(labs),
        thresholds=MappingProxyType(thresholds),
        groups=MappingProxyType(groups),
        autoimmune_groups=groups["autoimmune"],
        other_causes=other_causes,
        workup=MappingProxyType(workup),
        referral=referral,
        lab_category=lab_category,
        glucocorticoid_equivalents=glucocorticoid_equivalents,
        wording=wording,
    )


@functools.cache
def default_knowledge() -> Knowledge:
    """The knowledge of this process (``load_knowledge()`` with ``os.environ``), loaded on first use."""
    return load_knowledge()

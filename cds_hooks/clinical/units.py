"""Unit normalisation for laboratory values, driven by the conversions in ``knowledge/labs.toml``.

Laboratories print the same unit many ways (``µIU/mL``, ``uIU/mL``, ``mcIU/mL``, ``u[IU]/mL``); a value
is converted only when its unit is one the knowledge lists. An unknown unit gives ``None`` — the
caller reports the result as unusable instead of guessing.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Conversion:
    """``value_canonical = value × factor + offset``, with where the numbers come from."""

    factor: float
    offset: float
    source: str


class UnitTable(Protocol):
    """What unit conversion needs of a lab kind (``knowledge.LabKind`` is one)."""

    unit: str | None  # canonical unit; None for qualitative kinds
    units: Mapping[str, Conversion]  # unit string exactly as configured -> conversion
    normalised_units: Mapping[str, Conversion]  # normalise_unit(key) -> conversion


_ANNOTATION = re.compile(r"\{[^}]*\}")
# "micro" / "mc" as a unit prefix (at the start or after an operator): "mcIU/mL", "microU/mL".
_MICRO_PREFIX = re.compile(r"(?<![a-z])(micro|mc)(?=[a-z])")


def normalise_unit(unit: str) -> str:
    """The comparison key of a unit string: lower case, ``µ``/``μ``/``mc``/``micro`` → ``u``.

    UCUM ``{annotations}`` carry no meaning and are removed (``%{HbA1c}`` = ``%``), as are square
    brackets and white space (``u[IU]/mL`` = ``uIU/mL``). Two configured units whose keys collide
    with different conversions are rejected when the knowledge is loaded.
    """
    text = unicodedata.normalize("NFKC", unit)  # NFKC turns the micro sign U+00B5 into Greek mu U+03BC
    text = text.replace("\u03bc", "u")
    text = _ANNOTATION.sub("", text)
    text = text.replace("[", "").replace("]", "")
    text = "".join(text.split()).lower()
    return _MICRO_PREFIX.sub("u", text)


def find_conversion(kind: UnitTable, unit: str | None, code: str | None) -> Conversion | None:
    """The conversion for a result's UCUM ``code`` or printed ``unit``; ``None`` when neither is known.

    The code is tried before the printed unit (it is the coded, machine-meant value), each exactly
    first and then by :func:`normalise_unit`.
    """
    # Fast path, the common case: the code (else, when the code needs no trimming, the unit) exactly as
    # configured; the loops below would find the same conversion first.
    code_is_trimmed = True
    if isinstance(code, str):
        conversion = kind.units.get(code)
        if conversion is not None:
            return conversion
        code_is_trimmed = code == code.strip()
    if code_is_trimmed and isinstance(unit, str):
        conversion = kind.units.get(unit)
        if conversion is not None:
            return conversion
    candidates = [c.strip() for c in (code, unit) if isinstance(c, str) and c.strip()]
    for candidate in candidates:
        conversion = kind.units.get(candidate)
        if conversion is not None:
            return conversion
    for candidate in candidates:
        conversion = kind.normalised_units.get(normalise_unit(candidate))
        if conversion is not None:
            return conversion
    return None


def to_canonical(kind: UnitTable, value: float, unit: str | None, code: str | None) -> float | None:
    """``value`` in the kind's canonical unit (``value × factor + offset``), or ``None``.

    ``None`` when the kind is qualitative (no canonical unit), the value is not a finite number, or
    the unit is not one the knowledge lists — never a guess.
    """
    if kind.unit is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    conversion = find_conversion(kind, unit, code)
    if conversion is None:
        return None
    return value * conversion.factor + conversion.offset

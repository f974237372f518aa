"""Criteria that more than one rule names: the signs of antibody-mediated resistance and of glycaemia."""

from __future__ import annotations

from cds_hooks.clinical.findings import Finding, Findings
from cds_hooks.clinical.rules.base import Criterion

LABILE = Criterion(
    "Labile glucose (low and high within the window, or high variability)", "labile_glucose", "any of"
)
EXTREME = Criterion("Extreme insulin requirement", "extreme_requirement", "any of")
MARKED = Criterion("Markedly raised insulin level", "insulin_marked", "any of")
HYPERGLYCAEMIA = Criterion(
    "Hyperglycaemia, measured (glucose, fasting glucose, OGTT or HbA1c)", "hyperglycaemia", "any of"
)
INSULIN_ELEVATED = Criterion("Raised insulin level", "insulin_elevated", "any of")

# Signs of antibody-mediated resistance; a positive insulin antibody alone is not one (issue 14 item 8).
SIGNS_OF_ANTIBODIES = (LABILE, EXTREME, MARKED)


def antibody_signs(f: Findings) -> list[Finding]:
    """The signs of antibody-mediated resistance present: the antibody workup fires on them, the plain
    switch only without them."""
    return [s for s in (f.labile_glucose, f.extreme_requirement, f.insulin_marked) if s]

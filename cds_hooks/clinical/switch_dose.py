"""How much to take off the insulin dose when switching from animal to human insulin (reference §5).

The dose per administration is reduced by a configurable percentage and rounded down to whole units:
the smaller reduction only from porcine insulin with no antibodies and a moderate total daily dose, the
larger one otherwise, including when the species is not recorded. This is clinical reasoning, apart
from the card that proposes the order (``cards/switch_order.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cds_hooks.clinical.findings import Findings
from cds_hooks.clinical.knowledge import Knowledge

PORCINE, BOVINE = "porcine", "bovine"
# The thresholds the sizing of the switch reads (declared with the switch rules, shown on their pages).
THRESHOLDS = ("switch_dose_reduction_porcine", "switch_dose_reduction_high", "switch_dose_high_tdd")


@dataclass(frozen=True)
class Reduction:
    percent: float
    reasons: tuple[str, ...]


def reduction(knowledge: Knowledge, findings: Findings, species: str | None) -> Reduction:
    """The percentage to take off the dose, and every reason that applies (for the note)."""
    k, reasons_text = knowledge, knowledge.wording.switch.reasons
    reasons = [reasons_text[species] if species in (PORCINE, BOVINE) else reasons_text["unknown_species"]]
    if findings.insulin_antibody_positive:
        reasons.append(reasons_text["antibodies"])
    tdd, limit = findings.total_daily_dose, k.threshold("switch_dose_high_tdd")
    if tdd is not None and tdd > limit:
        reasons.append(reasons_text["high_dose"].format(tdd=f"{tdd:g}", limit=f"{limit:g}"))
    high = species != PORCINE or len(reasons) > 1
    name = "switch_dose_reduction_high" if high else "switch_dose_reduction_porcine"
    return Reduction(percent=k.threshold(name), reasons=tuple(reasons))


def reduced_units(units: float, percent: float) -> int:
    """Rounded down to whole units; the rounding to 6 places first keeps 10 × 0.9 from becoming 8."""
    return math.floor(round(units * (100 - percent) / 100, 6))

"""What a card is rendered from: the patient's facts and findings, the knowledge and, on the order hooks,
the judged drafts. The cited facts themselves ride on the rule result's evidence (``Evidence.fact``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cds_hooks.clinical.facts.model import MedicationUse, PatientFacts
from cds_hooks.clinical.findings import Findings
from cds_hooks.clinical.knowledge import Knowledge


@dataclass(frozen=True)
class CardContext:
    facts: PatientFacts
    findings: Findings
    knowledge: Knowledge
    base_url: str  # absolute URL of this service, for source/links
    drafts: tuple[tuple[MedicationUse, dict[str, Any]], ...] = field(default=())  # order hooks

"""What a card is rendered from: the patient's facts and findings, the knowledge, the cited resources as
the record has them (for record text and reported units) and, on the order hooks, the judged drafts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cds_hooks.clinical.facts.model import MedicationUse, PatientFacts
from cds_hooks.clinical.findings import Findings
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.fhir.resource_index import ResourceIndex


@dataclass(frozen=True)
class CardContext:
    facts: PatientFacts
    findings: Findings
    knowledge: Knowledge
    base_url: str  # absolute URL of this service, for source/links
    index: ResourceIndex | None = None  # the patient's resources, to read what a card cites
    drafts: tuple[tuple[MedicationUse, dict[str, Any]], ...] = field(default=())  # order hooks
    # Views derived from the fields above, built once per evaluation rather than once per card line.
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

"""The figures of a screen, added up in the executors and merged on the driver: the driver holds counts
and a bounded list of examples, never the population."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from cds_hooks.bulk.ndjson import Issue
from cds_hooks.bulk.patient import FAILED, NO_PATIENT, SCREENED, PatientOutcome

# Examples kept per kind (patients that failed, records without their Patient); every one is counted.
MAX_LISTED = 100


@dataclass
class Tally:
    """Patients by status, patients and cards per rule over the living patients screened."""

    statuses: Counter[str] = field(default_factory=Counter)
    patients_per_rule: Counter[str] = field(default_factory=Counter)
    cards_per_rule: Counter[str] = field(default_factory=Counter)
    with_cards: int = 0
    evaluated: int = 0  # patients the evaluation ran for (the rest had nothing but their Patient left)
    orphan_records: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (patient id, error), first MAX_LISTED
    orphans: list[Issue] = field(default_factory=list)  # first MAX_LISTED

    def add(self, outcome: PatientOutcome) -> Tally:
        self.statuses[outcome.status] += 1
        self.evaluated += outcome.evaluated
        if outcome.status == SCREENED:
            rules = [c.rule_id for c in outcome.cards]
            self.cards_per_rule.update(rules)
            self.patients_per_rule.update(set(rules))
            self.with_cards += bool(rules)
        elif outcome.status == FAILED and len(self.failed) < MAX_LISTED:
            self.failed.append((outcome.patient_id, outcome.error or "failed"))
        elif outcome.status == NO_PATIENT:
            self.orphan_records += len(outcome.issues)
            self.orphans.extend(outcome.issues[: MAX_LISTED - len(self.orphans)])
        return self

    def merge(self, other: Tally) -> Tally:
        self.statuses += other.statuses
        self.patients_per_rule += other.patients_per_rule
        self.cards_per_rule += other.cards_per_rule
        self.with_cards += other.with_cards
        self.evaluated += other.evaluated
        self.orphan_records += other.orphan_records
        self.failed.extend(other.failed[: MAX_LISTED - len(self.failed)])
        self.orphans.extend(other.orphans[: MAX_LISTED - len(self.orphans)])
        return self

    @property
    def screened(self) -> int:
        """Living patients evaluated without error: the denominator of the burden."""
        return self.statuses[SCREENED]

"""What the service remembers about cards it showed, and the two decisions that rest on it (issue 14,
items 12 and 13): a snoozed card stays away, and order-sign does not repeat what order-select showed.

Pure logic over plain values; the database behind ``CardMemory`` is the store's business.

- **Snooze.** An override with a snoozing reason suppresses that rule's card for that patient for the
  rule's ``snooze_days`` from the override (``outcomeTimestamp``, never later than its arrival), unless
  the new card cites evidence the overridden card did not: a resource or value, as a fingerprint of
  each evidence line (its resource reference and text), or a different variant of the rule.
- **No repeat at signing.** An order-sign card is left out when, within the last hour, order-select
  showed the same rule's card for the same patient about the same draft orders with the same content,
  and feedback for that card arrived (accepted or overridden).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

# Override reasons that snooze (issue 14 item 12); "snooze" is the service's own "Remind me in 90 days".
SNOOZE_REASONS = frozenset({"already-addressed", "patient-declined", "snooze"})
SIGNING_WINDOW = timedelta(minutes=60)
SNOOZED = "snoozed"
SHOWN_AT_SELECT = "shown-at-order-select"


@dataclass(frozen=True)
class IssuedCard:
    """One card as the card log keeps it: no patient data, only fingerprints."""

    uuid: str
    rule_id: str
    indicator: str
    evidence: frozenset[str]  # fingerprints of the evidence lines, plus the rule's variant
    drafts: frozenset[str] = frozenset()  # "MedicationRequest/<id>#<content hash>" of cited draft orders


@dataclass(frozen=True)
class Snooze:
    """An override that snoozes ``rule_id`` from ``start`` for the card whose evidence it saw."""

    rule_id: str
    evidence: frozenset[str]
    start: datetime


class CardMemory(Protocol):
    """The store's side: read earlier overrides and order-select cards, remember the cards shown."""

    def snoozes(self, patient: str, rule_ids: Iterable[str], since: datetime) -> list[Snooze]: ...

    def acknowledged_select_cards(
        self, patient: str, rule_ids: Iterable[str], since: datetime
    ) -> list[IssuedCard]: ...

    def remember(
        self,
        service_id: str,
        hook: str,
        hook_instance: str,
        patient: str,
        cards: list[IssuedCard],
        now: datetime,
    ) -> None: ...


def fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:20]


def evidence_fingerprints(variant: str, evidence: Iterable[Any]) -> frozenset[str]:
    """One fingerprint per cited resource and what the card said of it, plus one for the variant."""
    return frozenset({fingerprint("variant", variant), *(fingerprint(e.reference, e.text) for e in evidence)})


def draft_fingerprints(evidence: Iterable[Any], drafts: dict[str, dict[str, Any]]) -> frozenset[str]:
    """The draft orders (from ``context.draftOrders``) a card cites, each with a hash of its content."""
    cited = {e.reference for e in evidence if e.reference in drafts}
    return frozenset(
        f"{ref}#{fingerprint(json.dumps(drafts[ref], sort_keys=True, separators=(',', ':')))}"
        for ref in cited
    )


def is_snoozed(card: IssuedCard, snoozes: list[Snooze], days: int, now: datetime) -> bool:
    """Suppressed by a live snooze of the same rule that saw all of this card's evidence."""
    return any(
        s.rule_id == card.rule_id and now - s.start < timedelta(days=days) and card.evidence <= s.evidence
        for s in snoozes
    )


def shown_at_select(card: IssuedCard, select_cards: list[IssuedCard]) -> bool:
    """Every draft this order-sign card is about was on an acknowledged order-select card of its rule."""
    if not card.drafts:
        return False
    seen = {d for c in select_cards if c.rule_id == card.rule_id for d in c.drafts}
    return card.drafts <= seen

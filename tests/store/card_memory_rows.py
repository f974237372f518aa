"""The card memory's rows as the store tests write them: an issued card, and a snoozing override of it."""

from __future__ import annotations

import uuid
from datetime import datetime

from cds_hooks.hooks.card_memory import IssuedCard
from cds_hooks.hooks.protocol import FeedbackItem


def issued_card(rule: str = "animal-insulin-switch") -> IssuedCard:
    return IssuedCard(uuid=str(uuid.uuid4()), rule_id=rule, indicator="info", evidence=frozenset({"e"}))


def snooze(card: IssuedCard, when: datetime) -> FeedbackItem:
    """The clinician's "remind me later" override of ``card`` at ``when``."""
    return FeedbackItem(
        card=card.uuid,
        outcome="overridden",
        outcome_timestamp=when,
        accepted_suggestions=(),
        override_reason_code="snooze",
        override_reason_system=None,
        override_reason_display=None,
        override_comment=None,
        raw={},
    )

"""Feedback analytics for the people who govern CDS: per service and rule, how often cards were shown,
accepted and overridden, why they were overridden, and how long clinicians took to act.

Reads the card log and the feedback table (no patient identifiers are stored in either).
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from cds_hooks.hooks.card_memory import SNOOZE_REASONS
from cds_hooks.store.database import Store, card_log_table, feedback_table

TOP_REASONS = 3


@dataclass
class RuleStats:
    service_id: str
    rule_id: str
    shown: int = 0
    accepted: int = 0  # cards with at least one accepted outcome
    overridden: int = 0  # cards with at least one overridden outcome
    snoozed: int = 0  # of those, overridden with a reason that snoozes the rule for the patient
    top_override_reasons: list[tuple[str, int]] = field(default_factory=list)
    median_seconds_to_feedback: float | None = None

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.shown if self.shown else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["acceptance_rate"] = self.acceptance_rate
        data["top_override_reasons"] = [{"reason": r, "count": n} for r, n in self.top_override_reasons]
        return data


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they were stored in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _reason(row: Any) -> str:
    return (
        row.override_display
        or row.override_code
        or ("comment only" if row.override_comment else "none given")
    )


def feedback_report(
    store: Store,
    since: datetime | None = None,
    service_id: str | None = None,
    until: datetime | None = None,
) -> list[RuleStats]:
    """Aggregates over cards issued at or after ``since`` and before ``until`` (open ends when ``None``)."""
    cards_query = select(card_log_table)
    if since is not None:
        cards_query = cards_query.where(card_log_table.c.created_at >= since)
    if until is not None:
        cards_query = cards_query.where(card_log_table.c.created_at < until)
    if service_id is not None:
        cards_query = cards_query.where(card_log_table.c.service_id == service_id)
    with store.engine.connect() as conn:
        cards = {row.card_uuid: row for row in conn.execute(cards_query)}
        # Matched to the card log here, not by the known_card flag set on arrival: the card log is
        # written off the request path, so feedback may overtake its card by a fraction of a second.
        feedback_rows = list(conn.execute(select(feedback_table)))

    stats: dict[tuple[str, str], RuleStats] = {}
    for card in cards.values():
        key = (card.service_id, card.rule_id)
        stats.setdefault(key, RuleStats(service_id=card.service_id, rule_id=card.rule_id)).shown += 1

    outcomes: dict[str, set[str]] = defaultdict(set)
    snoozed: set[str] = set()
    first_feedback: dict[str, datetime] = {}
    reasons: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for row in feedback_rows:
        card = cards.get(row.card_uuid)
        if card is None:
            continue
        outcomes[row.card_uuid].add(row.outcome)
        when = _aware(row.outcome_timestamp)
        if row.card_uuid not in first_feedback or when < first_feedback[row.card_uuid]:
            first_feedback[row.card_uuid] = when
        if row.outcome == "overridden":
            reasons[(card.service_id, card.rule_id)][_reason(row)] += 1
            if row.override_code in SNOOZE_REASONS:
                snoozed.add(row.card_uuid)

    delays: dict[tuple[str, str], list[float]] = defaultdict(list)
    for card_uuid, seen in outcomes.items():
        card = cards[card_uuid]
        key = (card.service_id, card.rule_id)
        stats[key].accepted += "accepted" in seen
        stats[key].overridden += "overridden" in seen
        stats[key].snoozed += card_uuid in snoozed
        delays[key].append((first_feedback[card_uuid] - _aware(card.created_at)).total_seconds())
    for key, rule_stats in stats.items():
        rule_stats.top_override_reasons = reasons[key].most_common(TOP_REASONS)
        if delays[key]:
            rule_stats.median_seconds_to_feedback = statistics.median(delays[key])
    return sorted(stats.values(), key=lambda s: (s.service_id, s.rule_id))


COLUMNS = (
    "service",
    "rule",
    "shown",
    "accepted",
    "overridden",
    "snoozed",
    "acceptance",
    "median to feedback",
    "top override reasons",
)


def _row(s: RuleStats) -> list[str]:
    rate = f"{s.acceptance_rate:.0%}" if s.acceptance_rate is not None else "-"
    median = _duration(s.median_seconds_to_feedback)
    reasons = "; ".join(f"{r} ({n})" for r, n in s.top_override_reasons) or "-"
    return [
        s.service_id,
        s.rule_id,
        str(s.shown),
        str(s.accepted),
        str(s.overridden),
        str(s.snoozed),
        rate,
        median,
        reasons,
    ]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_table(stats: list[RuleStats]) -> str:
    rows = [list(COLUMNS), *(_row(s) for s in stats)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if not stats:
        lines.append("(no cards recorded in this period)")
    return "\n".join(lines)


def format_csv(stats: list[RuleStats]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "service_id",
            "rule_id",
            "shown",
            "accepted",
            "overridden",
            "snoozed",
            "acceptance_rate",
            "median_seconds_to_feedback",
            "top_override_reasons",
        ]
    )
    for s in stats:
        writer.writerow(
            [
                s.service_id,
                s.rule_id,
                s.shown,
                s.accepted,
                s.overridden,
                s.snoozed,
                "" if s.acceptance_rate is None else f"{s.acceptance_rate:.4f}",
                "" if s.median_seconds_to_feedback is None else f"{s.median_seconds_to_feedback:.0f}",
                "; ".join(f"{r} ({n})" for r, n in s.top_override_reasons),
            ]
        )
    return out.getvalue()


def format_json(stats: list[RuleStats]) -> str:
    return json.dumps({"rules": [s.as_dict() for s in stats]}, indent=2)

"""The rule dashboard for the CDS committee (``/dashboard``): per rule and week, cards shown,
accepted and overridden, the acceptance rate over time, top override reasons, median time to feedback,
and the rule's live thresholds and the knowledge version.

Served only when ``CDS_HOOKS_ADMIN_TOKEN`` is set (404 otherwise); the token comes as a Bearer header
or through the sign-in form, which opens a server-side session like the SMART app's. Every number comes
from ``store.analytics.feedback_report`` — the function behind ``cds-hooks feedback report`` — over the
card log and feedback tables, which hold no patient identifiers.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Blueprint, Response, make_response, render_template, request, url_for

from cds_hooks.api.runtime import runtime
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.clinical.rules import RULES_BY_ID
from cds_hooks.store.analytics import RuleStats, feedback_report
from cds_hooks.web.app_sessions import COOKIE, app_sessions, start_session
from cds_hooks.web.html_pages import error_page, secure_headers
from cds_hooks.web.timeline.acceptance_chart import acceptance_chart

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates")
bp.after_request(secure_headers)

ADMIN_SECONDS = 8 * 3600
MAX_WEEKS = 26


@dataclass
class RuleRow:
    """One rule: the all-time figures (as the feedback report) and one entry per week."""

    total: RuleStats
    weeks: list[RuleStats | None]
    thresholds: list[tuple[str, str]]


def _token() -> str:
    return runtime().settings.admin_token


def _authorised() -> bool:
    token = _token()
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode()):
        return True
    session = app_sessions().get(request.cookies.get(COOKIE))
    return session is not None and session.get("kind") == "admin"


def knowledge_version(knowledge: Knowledge) -> str:
    """``knowledge.version`` when the knowledge declares one, else a digest of its files."""
    declared = getattr(knowledge, "version", None)
    if isinstance(declared, str) and declared:
        return declared
    digest = hashlib.sha256()
    root = Path(knowledge.root)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return f"sha256:{digest.hexdigest()[:12]}"


def _week_start(when: datetime) -> datetime:
    day = when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _thresholds(knowledge: Knowledge, rule_id: str) -> list[tuple[str, str]]:
    rule = RULES_BY_ID.get(rule_id)
    names = rule.thresholds if rule is not None else ()
    return [
        (name, f"{knowledge.thresholds[name].value:g} {knowledge.thresholds[name].unit}".strip())
        for name in names
        if name in knowledge.thresholds
    ]


@bp.before_request
def _gate() -> Response | None:
    if not _token():
        return error_page(404, "The dashboard is off: set CDS_HOOKS_ADMIN_TOKEN to turn it on.")
    if request.endpoint == "dashboard.sign_in" or _authorised():
        return None
    return make_response(render_template("app/sign_in.html", failed=False), 401)


@bp.post("/sign-in")
def sign_in() -> Response:
    typed = request.form.get("token", "")
    if not hmac.compare_digest(typed.encode(), _token().encode()):
        return make_response(render_template("app/sign_in.html", failed=True), 401)
    return start_session({"kind": "admin"}, ADMIN_SECONDS, url_for("dashboard.dashboard"), status=303)


@bp.get("")
def dashboard() -> Response:
    rt = runtime()
    now = datetime.now(UTC)
    totals = feedback_report(rt.store)
    weeks = [_week_start(now) - timedelta(weeks=n) for n in range(MAX_WEEKS - 1, -1, -1)]
    weekly = [
        {
            (s.service_id, s.rule_id): s
            for s in feedback_report(rt.store, since=w, until=w + timedelta(days=7))
        }
        for w in weeks
    ]
    first = next((i for i, week in enumerate(weekly) if week), len(weeks) - 1)
    weeks, weekly = weeks[first:], weekly[first:]
    rows = [
        RuleRow(
            total=s,
            weeks=[week.get((s.service_id, s.rule_id)) for week in weekly],
            thresholds=_thresholds(rt.knowledge, s.rule_id),
        )
        for s in totals
    ]
    rates = {
        f"{r.total.rule_id} ({r.total.service_id})": [w.acceptance_rate if w else None for w in r.weeks]
        for r in rows
    }
    return make_response(
        render_template(
            "app/dashboard.html",
            rows=rows,
            weeks=weeks,
            chart=acceptance_chart(weeks, rates),
            version=knowledge_version(rt.knowledge),
            generated=now,
        )
    )

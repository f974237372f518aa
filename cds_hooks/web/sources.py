"""GET /sources/<name>: the pages the cards link to, as HTML readable on a phone (issue 14 C18).

- ``/sources/<rule-id>``: what fires the rule, its *live* thresholds (after environment overrides), what
  it proposes, every source ``knowledge/`` holds for it, and the knowledge version and date;
- ``/sources/immune-insulin-resistance``: the seed clinical text.

Markdown from ``knowledge/`` is rendered with markdown-it (raw HTML disabled) into Jinja2 templates with
autoescaping; the pages need no external assets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import Blueprint, Response, render_template
from markdown_it import MarkdownIt
from markupsafe import Markup

from cds_hooks.api.runtime import runtime
from cds_hooks.clinical.cards.render import SEED_SOURCE
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.clinical.rules import RULES_BY_ID
from cds_hooks.hooks.protocol import CdsError

bp = Blueprint("sources", __name__, template_folder="templates")

_NAME = re.compile(r"^[a-z0-9-]{1,80}$")
_MARKDOWN = MarkdownIt("commonmark", {"html": False})


def markdown_html(text: str) -> Markup:
    """Markdown written in knowledge/ as HTML (raw HTML in it is escaped, never passed through)."""
    return Markup(_MARKDOWN.render(text))


@dataclass(frozen=True)
class ThresholdRow:
    name: str
    value: str
    default: str
    overridden_by: str | None
    description: str
    source: str


def _number(value: float) -> str:
    return f"{value:g}"


def rule_page(knowledge: Knowledge, rule_id: str) -> str:
    wording = knowledge.wording
    card = wording.cards[rule_id]
    page = card.page
    rule = RULES_BY_ID[rule_id]  # the page's thresholds and tests are the rule's own declaration
    rows = [
        ThresholdRow(
            name=name,
            value=f"{_number(t.value)} {t.unit}",
            default=f"{_number(t.default)} {t.unit}",
            overridden_by=t.overridden_by,
            description=t.description,
            source=t.source,
        )
        for name in rule.thresholds
        if (t := knowledge.thresholds.get(name)) is not None
    ]
    tests = [knowledge.workup[kind] for kind in rule.workup if kind in knowledge.workup]
    references = list(page.references)
    if rule.switch:
        references.append(f"Hypoglycaemia after switching: {wording.switch.hypoglycaemia_source}")
    if card.monitoring is not None:
        references.append(f"{card.monitoring.label}: {card.monitoring.source}")
    references += [f"{t.text} (code {t.code.code}): {t.source}" for t in tests]
    references += [f"Threshold {row.name}: {row.source}" for row in rows]
    if "referral" in page.proposes.lower():
        references.append(f"{knowledge.referral.text}: {knowledge.referral.source}")
    return render_template(
        "sources/rule.html",
        rule_id=rule_id,
        page=page,
        indicator=card.indicator,
        fires=markdown_html(page.fires),
        proposes=markdown_html(page.proposes),
        thresholds=rows,
        tests=tests,
        references=list(dict.fromkeys(references)),
        version=wording.version,
        seed_url=f"{SEED_SOURCE}",
    )


def seed_page(knowledge: Knowledge) -> str:
    path = knowledge.root / "sources" / f"{SEED_SOURCE}.md"
    text = path.read_text(encoding="utf-8")
    title = text.splitlines()[0].lstrip("# ").strip() if text else SEED_SOURCE
    return render_template(
        "sources/text.html", title=title, body=markdown_html(text), version=knowledge.wording.version
    )


@bp.get("/sources/<name>")
def source(name: str) -> Response:
    if not _NAME.match(name):
        raise CdsError(404, "No such source page.")
    knowledge = runtime().knowledge
    if name in knowledge.wording.cards:
        html = rule_page(knowledge, name)
    elif name == SEED_SOURCE and (knowledge.root / "sources" / f"{name}.md").is_file():
        html = seed_page(knowledge)
    else:
        raise CdsError(404, f"No source page named '{name}'.")
    return Response(html, mimetype="text/html")

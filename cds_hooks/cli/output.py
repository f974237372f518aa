"""CDS Hooks cards as plain text for a person at a terminal.

An EHR renders a card's markdown; a terminal does not, and a person checking a patient wants the verdict
and the evidence behind it first, not the explanatory prose. So each card is shown as: indicator and
summary, the rule id (``source.topic.code``, what screening counts), the evidence lists of the detail,
then each suggestion with what accepting it would create. Works on any CDS Hooks response (only the
card JSON is read), so ``--json`` output saved earlier can be shown the same way. Lines are not wrapped:
terminals wrap, and unwrapped lines stay greppable.
"""

from __future__ import annotations

import html
import itertools
import re
from typing import Any

_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_LINK = re.compile(r"(?<!\\)\[([^\]]+)\]\(([^)\s]+)\)")
# Record text on cards is escaped markdown (backslash escapes, entities, word joiners that break links):
# a terminal shows it as written.
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_HEADING = re.compile(r"^\*\*(?P<title>[^*\n]+)\*\*$")
_LIST_ITEM = re.compile(r"^\s*[-*+]\s+")


def plain(markdown: str) -> str:
    """Inline markdown as text: bold markers dropped, links as ``label (url)``."""
    text = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", markdown)
    text = _BOLD.sub(lambda m: m.group(1) or m.group(2), text)
    return html.unescape(_ESCAPE.sub(r"\1", text)).replace("\u2060", "")


def detail_sections(detail: str) -> list[tuple[str, list[str]]]:
    """The titled lists of a card's markdown detail (``**Evidence**`` followed by ``- item`` lines).

    These lists are what the card rests on (evidence, other causes, data that could not be used);
    the prose paragraphs around them are left to the EHR."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", detail or "") if p.strip()]
    sections: list[tuple[str, list[str]]] = []
    for heading, body in itertools.pairwise(paragraphs):
        match = _HEADING.match(heading)
        lines = body.splitlines()
        if match and lines and all(_LIST_ITEM.match(line) for line in lines):
            sections.append((match.group("title").strip(), [plain(_LIST_ITEM.sub("", x)) for x in lines]))
    return sections


def _action_line(action: dict[str, Any]) -> str:
    kind = str(action.get("type") or "action")
    resource = action.get("resource")
    target = ""
    if isinstance(resource, dict):
        status = f" ({resource['status']})" if isinstance(resource.get("status"), str) else ""
        target = f" {resource.get('resourceType', 'resource')}{status}"
    elif isinstance(action.get("resourceId"), list | str):
        ids = action["resourceId"]
        target = " " + (", ".join(ids) if isinstance(ids, list) else ids)
    description = action.get("description")
    return f"{kind}{target}" + (f": {plain(description)}" if isinstance(description, str) else "")


def format_card(card: dict[str, Any], number: int) -> list[str]:
    """One card as indented lines, numbered as the EHR would list it."""
    indicator = str(card.get("indicator") or "info").upper()
    lines = [f"{number}. {indicator}  {plain(str(card.get('summary', '')))}"]
    source = card.get("source") if isinstance(card.get("source"), dict) else {}
    topic = source.get("topic") if isinstance(source.get("topic"), dict) else {}
    if topic.get("code"):
        lines.append(f"   rule: {topic['code']}")
    for title, items in detail_sections(str(card.get("detail") or "")):
        lines.append(f"   {title}")
        lines.extend(f"     - {item}" for item in items)
    suggestions = [s for s in card.get("suggestions") or [] if isinstance(s, dict)]
    if suggestions:
        lines.append("   Suggestions")
    for suggestion in suggestions:
        recommended = " (recommended)" if suggestion.get("isRecommended") else ""
        lines.append(f"     * {plain(str(suggestion.get('label', '')))}{recommended}")
        lines.extend(
            f"         {_action_line(a)}" for a in suggestion.get("actions") or [] if isinstance(a, dict)
        )
    if source.get("url"):
        label = f"{source['label']}: " if source.get("label") else ""
        lines.append(f"   Source: {label}{source['url']}")
    return lines


def format_response(response: dict[str, Any], heading: str) -> str:
    """A whole CDS Hooks response under a heading line (which patient, where the data came from)."""
    cards = [c for c in response.get("cards") or [] if isinstance(c, dict)]
    count = f"{len(cards)} card" + ("" if len(cards) == 1 else "s")
    lines = [f"{heading}: {count}" if cards else f"{heading}: no cards"]
    for number, card in enumerate(cards, start=1):
        lines.append("")
        lines.extend(format_card(card, number))
    return "\n".join(lines) + "\n"

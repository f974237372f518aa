"""How a clinician's screen reads a card: its markdown rendered the way EHRs render it (CommonMark with
GFM tables, strikethrough and autolinks, raw HTML enabled, like the CDS Hooks Sandbox), and the measures
of issue 14 C14–C17 over it."""

from __future__ import annotations

import html
import re
from typing import Any

from markdown_it import MarkdownIt

# Raw HTML enabled and GFM-style autolinks (scheme and www. links, e-mail addresses).
RENDERER = MarkdownIt("commonmark", {"html": True, "linkify": True}).enable(
    ["linkify", "table", "strikethrough"]
)
RENDERER.linkify.set({"fuzzy_link": False})
CARD_TAGS = frozenset({"p", "ul", "ol", "li", "strong", "em"})
# A plain-text field (summary, label, description) shown by an EHR that renders markdown anyway may get
# emphasis from the record's asterisks or tildes; never a tag, a link or an image.
PLAIN_FIELD_TAGS = CARD_TAGS | {"s", "del"}
_TAG = re.compile(r"<\s*(/?)\s*([a-zA-Z][\w:-]*)")
_DOUBLED = re.compile(r"\b([A-Za-z]{3,})\b[\s,;:()]+\1\b", re.IGNORECASE)
_GFM_AUTOLINK = re.compile(r"(?i)(?<![\w\u2060])(https?://|ftp://|www\.)|\b[\w.+-]+@[\w-]+\.[\w.-]+")
WORD_JOINER = "\u2060"


def render(markdown: str) -> str:
    return RENDERER.render(markdown)


def tags(rendered: str) -> set[str]:
    return {name.lower() for _, name in _TAG.findall(rendered)}


def visible_text(rendered: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", " ", rendered)).replace(WORD_JOINER, "")


def prose(detail: str) -> str:
    """The prose before the first titled list."""
    return detail.split("\n\n**", 1)[0]


def words(text: str) -> int:
    return len(text.split())


def sections(detail: str) -> dict[str, list[str]]:
    """``**Heading**`` → its list items (as markdown)."""
    out: dict[str, list[str]] = {}
    for block in detail.split("\n\n**")[1:]:
        heading, _, body = block.partition("**\n\n")
        out[heading] = [line[2:] for line in body.splitlines() if line.startswith("- ")]
    return out


def doubled_words(text: str) -> list[str]:
    return [m.group(0) for m in _DOUBLED.finditer(text)]


def link_problems(rendered: str) -> list[str]:
    """Links a renderer would draw: anchors, images, and raw autolink patterns GFM would turn into links."""
    found = [t for t in ("a", "img") if t in tags(rendered)]
    shown = html.unescape(re.sub(r"<[^>]*>", " ", rendered))  # word joiners kept: they break autolinks
    found += [m.group(0) for m in _GFM_AUTOLINK.finditer(shown)]
    return found


def text_fields(card: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(where, text, is_markdown) of every human-readable field of a card, suggestions included."""
    fields = [("summary", card.get("summary", ""), False), ("detail", card.get("detail", ""), True)]
    for i, suggestion in enumerate(card.get("suggestions") or []):
        fields.append((f"suggestion[{i}].label", suggestion.get("label", ""), False))
        for j, action in enumerate(suggestion.get("actions") or []):
            fields.append((f"suggestion[{i}].action[{j}].description", action.get("description", ""), False))
            resource = action.get("resource") or {}
            for k, note in enumerate(resource.get("note") or []):
                fields.append((f"suggestion[{i}].action[{j}].note[{k}]", note.get("text", ""), False))
    return fields

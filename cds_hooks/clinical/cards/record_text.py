"""Text from the patient's record, made safe for the card fields it is written into.

Record text (medication and condition names, result strings, units, dosage text) may be typed by anyone
who can edit a record, patients included, and EHRs render card markdown with raw HTML enabled. So it is
always data, never markup: in markdown fields the characters with a meaning in CommonMark, GFM or HTML
are escaped; in plain-text fields (summary, suggestion labels, action descriptions, notes) the characters
that could form a tag or a link are replaced by look-alikes. In both, bare URLs and e-mail addresses are
broken with an invisible word joiner so that no renderer turns them into links, and line breaks become
spaces so that the text cannot start a list, heading, quote or table row.
"""

from __future__ import annotations

import re

WORD_JOINER = "\u2060"  # invisible, zero width
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
# Inline markdown (CommonMark + GFM): emphasis, code, links and images, headings, tables, strikethrough.
_INLINE = re.compile(r"([\\`*_\[\]#|~])")
# Block markers that matter at the start of the text (it may follow a list marker on a card). An ordered
# list marker is 1-9 digits and "." or ")" followed by a space or the end (CommonMark 5.2), so a number
# such as "0.35 nmol/L" is left as written (issue 22 D14: no visible "0\.35"); likewise "-" or "+" start a
# list or a thematic break only before a space, the end or another break character, so "-5" stays.
_LEADING_BLOCK = re.compile(r"^(=|[-+](?=[\s\-+*_]|$))|^(\d{1,9})([.)])(?=\s|$)")
_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# What GFM autolinking and linkify renderers turn into links without any markup: scheme "://", "www.",
# and e-mail addresses ("@").
_AUTOLINK = re.compile(r"(?i)(?<=[a-z0-9])(?=:/)|\b(?=www\.)|(?=@)")
_PLAIN = str.maketrans({"<": "‹", ">": "›", "[": "(", "]": ")", "`": "'", "\\": "/"})


def _one_line(text: object) -> str:
    return " ".join(_CONTROL.sub(" ", str(text)).split())


def _break_autolinks(text: str) -> str:
    return _AUTOLINK.sub(WORD_JOINER, text)


def _escape_block(match: re.Match[str]) -> str:
    if match.group(1):
        return "\\" + match.group(1)
    return f"{match.group(2)}\\{match.group(3)}"


def markdown(text: object) -> str:
    """``text`` as literal markdown: it renders as written, never as markup, a link or HTML."""
    line = _LEADING_BLOCK.sub(_escape_block, _INLINE.sub(r"\\\1", _one_line(text)))
    return _break_autolinks(line.translate(_HTML))


def plain(text: object) -> str:
    """``text`` for a plain-text field that an EHR might still render as markdown or HTML."""
    line = _one_line(text).translate(_PLAIN).lstrip("#>*+-=|~ ")  # no heading, quote or list marker
    return _break_autolinks(line.replace("&", "&" + WORD_JOINER)).strip()

"""GET /sources/<name>: the clinical source texts the cards cite, served from the knowledge folder, so
every card's link works offline and shows exactly the text the rules encode."""

from __future__ import annotations

import re

from flask import Blueprint, Response

from cds_hooks.api.runtime import runtime
from cds_hooks.hooks.protocol import CdsError

bp = Blueprint("sources", __name__)

_NAME = re.compile(r"^[a-z0-9-]{1,80}$")


@bp.get("/sources/<name>")
def source(name: str) -> Response:
    if not _NAME.match(name):
        raise CdsError(404, "No such source text.")
    path = runtime().knowledge.root / "sources" / f"{name}.md"
    if not path.is_file():
        raise CdsError(404, f"No source text named '{name}'.")
    return Response(path.read_text(encoding="utf-8"), mimetype="text/markdown")

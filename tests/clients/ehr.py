"""What an EHR does before it calls a CDS service: fill the discovery's prefetch templates against its FHIR
server. Standard library only, so that the third-party client drivers (their own virtualenvs) import it too.

``fill_prefetch`` sends each template as a FHIR search or read, follows ``next`` links and merges the pages
into one searchset Bundle per key (as HealthChain's and Medplum's users, and most EHRs, send prefetch).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

_TOKEN = re.compile(r"\{\{\s*context\.(\w+)\s*\}\}")


def fill_template(template: str, context: dict[str, Any]) -> str:
    return _TOKEN.sub(lambda m: str(context[m.group(1)]), template)


def get_json(url: str, timeout: float = 30, headers: dict[str, str] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/fhir+json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def fetch(
    fhir_base: str, query: str, max_pages: int = 20, headers: dict[str, str] | None = None
) -> dict[str, Any] | None:
    """The resource (a read) or one searchset Bundle of every page (a search); ``None`` for a failed read."""
    url = f"{fhir_base.rstrip('/')}/{query}"
    if "?" not in query:
        try:
            return get_json(url, headers=headers)
        except urllib.error.HTTPError:
            return None
    entries: list[dict[str, Any]] = []
    for _ in range(max_pages):
        page = get_json(url, headers=headers)
        entries += page.get("entry", [])
        url = next((link["url"] for link in page.get("link", []) if link.get("relation") == "next"), "")
        if not url:
            break
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


def fill_prefetch(
    fhir_base: str, templates: dict[str, str], context: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return {key: fetch(fhir_base, fill_template(t, context), headers=headers) for key, t in templates.items()}

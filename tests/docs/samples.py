"""The sample outputs in README.md and docs/ that are generated from the live service.

A sample sits between ``<!-- sample:begin NAME … -->`` and ``<!-- sample:end -->``. ``render(NAME)`` runs
what the sample shows — the README's curl body against the service, ``cds-hooks evaluate`` on the request
the docs print — and formats the answer; ``tests/docs/test_docs_samples.py`` fails when a block differs
from it, and ``scripts/update_docs_samples.py`` rewrites the blocks. Card texts therefore never go stale:
when the clinical wording changes, the script regenerates them (and the diff is reviewed like any other).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"(<!-- sample:begin (?P<name>[\w-]+)[^>]*-->\n)(?P<body>.*?)(<!-- sample:end -->)", re.S)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SAMPLE_UUID = "05eecd43-f79c-4432-bab2-cdf3c2e91b2e"


def blocks(path: Path) -> dict[str, str]:
    return {m.group("name"): m.group("body") for m in BLOCK.finditer(path.read_text())}


def curl_posts(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Every ``curl … -X POST http://127.0.0.1:8080<path> … -d '<json>'`` in ``text``: (path, body)."""
    found = []
    for match in re.finditer(r"curl -s -X POST http://127\.0\.0\.1:8080(\S+).*?-d '(.*?)'", text, re.S):
        found.append((match.group(1), json.loads(match.group(2))))
    return found


def service_client() -> Any:
    """A test client of the service on a throwaway SQLite database (no FHIR server reachable)."""
    from cds_hooks.app import create_app
    from cds_hooks.clinical.knowledge import default_knowledge
    from cds_hooks.process.config import Settings

    tmp = Path(tempfile.mkdtemp(prefix="docs-samples-"))
    return create_app(
        Settings.from_env({}, data_dir=tmp / "data"), knowledge=default_knowledge()
    ).test_client()


def abbreviated(cards: list[dict[str, Any]]) -> str:
    rows = [
        {"indicator": c["indicator"], "summary": c["summary"], "rule": c["source"]["topic"]["code"]}
        for c in cards
    ]
    return "```json\n" + json.dumps(rows, indent=1, ensure_ascii=False) + "\n```\n"


def readme_curl_patient_view() -> str:
    (path, body), *_ = curl_posts((REPO / "README.md").read_text())
    response = service_client().post(path, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return abbreviated(response.get_json()["cards"])


def cli_request() -> dict[str, Any]:
    """The request.json docs/cli.md prints after ``$ cat request.json``."""
    text = (REPO / "docs" / "cli.md").read_text()
    match = re.search(r"\$ cat request\.json\n(\{.*?\n\})\n", text, re.S)
    assert match, "docs/cli.md has no `$ cat request.json` block"
    return json.loads(match.group(1))


def run_cli(*args: str) -> str:
    from cds_hooks.cli.main import main

    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        Path("request.json").write_text(json.dumps(cli_request()))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["evaluate", "request.json", *args])
        assert code == 0, out.getvalue()
    return out.getvalue()


def cli_evaluate_text() -> str:
    return "```console\n$ cds-hooks evaluate request.json\n" + run_cli() + "```\n"


def cli_evaluate_json(lines: int = 17) -> str:
    head = UUID.sub(SAMPLE_UUID, run_cli("--json")).splitlines()[:lines]
    return "```console\n$ cds-hooks evaluate request.json --json\n" + "\n".join(head) + "\n…\n```\n"


RENDERERS: dict[str, tuple[Path, Callable[[], str]]] = {
    "readme-curl-patient-view": (REPO / "README.md", readme_curl_patient_view),
    "cli-evaluate-text": (REPO / "docs" / "cli.md", cli_evaluate_text),
    "cli-evaluate-json": (REPO / "docs" / "cli.md", cli_evaluate_json),
}


def replace_block(text: str, name: str, fresh: str) -> str:
    """``text`` with the body of its sample block ``name`` replaced by ``fresh``."""

    def replace(match: re.Match[str]) -> str:
        if match.group("name") != name:
            return match.group(0)
        return match.group(1) + fresh + match.group(4)

    return BLOCK.sub(replace, text)


def update(names: list[str] | None = None) -> list[str]:
    """Rewrite the blocks (all, or ``names``); returns the names whose text changed."""
    changed = []
    for name, (path, render) in RENDERERS.items():
        if names and name not in names:
            continue
        text = path.read_text()
        new = replace_block(text, name, render())
        if new != text:
            path.write_text(new)
            changed.append(name)
    return changed


def check_run_sample(path: Path, name: str, fresh: str) -> None:
    """A sample only a test's real run produces (the demo's output, ``screen`` over the example patients on
    a FHIR server): it must equal that run's output; ``CDS_HOOKS_UPDATE_DOCS=1`` rewrites it instead."""
    assert name in blocks(path), f"{path.name} has no sample block {name!r}"
    if os.environ.get("CDS_HOOKS_UPDATE_DOCS"):
        path.write_text(replace_block(path.read_text(), name, fresh))
        return
    assert blocks(path)[name] == fresh, (
        f"{path.name}: the {name!r} sample differs from this run's output (CDS_HOOKS_UPDATE_DOCS=1 "
        "rewrites it)"
    )

"""Issue 21 acceptance: the cards of every example patient and every vignette, compared with a snapshot.

The snapshot (``cards.json`` beside this file) was recorded before the design work of issue 21 moved the
code, so a refactor that changes a card fails here. A deliberate clinical change re-records it:

    CDS_HOOKS_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest tests/snapshots -p no:xdist

and the diff of ``cards.json`` is reviewed in the commit like any other change of a card.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cds_hooks.clinical.evaluation import evaluate_index
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.fhir.resource_index import ResourceIndex
from cds_hooks.hooks.dispatch import evaluate_offline

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = Path(__file__).with_name("cards.json")


def _stable(value: Any) -> Any:
    """The card without what is new on every call: uuids (and the SMART link's appContext naming one)."""
    if isinstance(value, dict):
        return {
            k: ("<uuid>" if k == "uuid" else "<appContext>" if k == "appContext" else _stable(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def current_cards() -> dict[str, list[dict[str, Any]]]:
    knowledge = default_knowledge()
    out: dict[str, list[dict[str, Any]]] = {}
    manifest = json.loads((REPO / "examples" / "manifest.json").read_text())
    now = datetime.fromisoformat(f"{manifest['anchor_date']}T12:00:00+00:00")
    for example in manifest["examples"]:
        index = ResourceIndex()
        for entry in json.loads((REPO / "examples" / example["file"]).read_text())["entry"]:
            index.add(entry["resource"])
        response = evaluate_index(index, patient_id=example["patient_id"], knowledge=knowledge, now=now)
        out[f"example:{example['patient_id']}"] = _stable(response["cards"])
    for path in sorted((REPO / "tests" / "vignettes" / "cases").glob("*.json")):
        case = json.loads(path.read_text())
        now = datetime.fromisoformat(case["now"].replace("Z", "+00:00"))
        out[f"vignette:{path.stem}"] = _stable(evaluate_offline(case["request"], now=now)["cards"])
    return out


CURRENT = current_cards()
RECORDED: dict[str, Any] = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.is_file() else {}


def test_snapshot_covers_every_case() -> None:
    if os.environ.get("CDS_HOOKS_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(CURRENT, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
        RECORDED.clear()
        RECORDED.update(json.loads(SNAPSHOT.read_text()))
    assert sorted(RECORDED) == sorted(CURRENT)
    assert len(CURRENT) > 200, len(CURRENT)


@pytest.mark.parametrize("case", sorted(CURRENT))
def test_cards_match_the_snapshot(case: str) -> None:
    assert case in RECORDED, f"{case} is not in the snapshot: re-record it (see the module docstring)"
    assert CURRENT[case] == RECORDED[case]

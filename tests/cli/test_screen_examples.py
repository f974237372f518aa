"""The issue's acceptance check: ``screen --all`` over the example population (``examples/``) prints the
summary and writes the CSV, and every example gets exactly the rule ids its manifest declares.

Runs on a server of its own, so "all" means exactly the examples."""

from __future__ import annotations

import csv
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from cds_hooks.__main__ import main
from cds_hooks.cli.demo import load_examples
from cds_hooks.testing.fhir_test_server import FhirServerError, LocalFhirServer, ensure_installed


@pytest.fixture(scope="module")
def examples_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalFhirServer, list[Any]]]:
    try:
        server = LocalFhirServer(
            tmp_path_factory.mktemp("cli-examples"),
            tokens=[secrets.token_urlsafe(16)],
            venv=ensure_installed(),
        ).start()
    except FhirServerError as exc:
        pytest.fail(f"could not start the sekmet-fhir test server: {exc}", pytrace=False)
    try:
        yield server, load_examples(server)
    finally:
        server.stop()


@pytest.mark.fhir_server
def test_screen_all_examples(examples_server, tmp_path, capsys):
    server, examples = examples_server
    out_file = tmp_path / "examples.csv"

    code = main(
        [
            "screen",
            "--fhir-server",
            server.base_url,
            f"--token={server.token}",
            "--all",
            "--out",
            str(out_file),
        ]
    )
    out = capsys.readouterr().out

    with open(out_file, newline="", encoding="utf-8") as fh:
        rows = {row["patient_id"]: row for row in csv.DictReader(fh)}
    assert code == 0
    assert sorted(rows) == sorted(e["patient_id"] for e in examples)
    for example in examples:
        row = rows[example["patient_id"]]
        assert (sorted(row["rule_ids"].split()), row["error"]) == (sorted(example["expected_rules"]), ""), (
            example
        )
        assert len(row["summaries"].split(" | ")) == len(row["rule_ids"].split()) or not row["rule_ids"]

    with_cards = sum(1 for e in examples if e["expected_rules"])
    assert out.startswith(
        f"Screened {len(examples)} patients on {server.base_url}: {with_cards} with cards, "
        f"{len(examples) - with_cards} without cards, 0 errors.\n"
    )
    per_rule = Counter(rule for e in examples for rule in set(e["expected_rules"]))
    cards = Counter(rule for row in rows.values() for rule in row["rule_ids"].split())
    for rule_id, count in per_rule.items():
        # Cards per 1,000 screened patients: this rule's cards over the whole population.
        per_thousand = f"{1000 * cards[rule_id] / len(examples):.1f}"
        row = rf"^{re.escape(rule_id)}\s+{count}\s+{re.escape(per_thousand)}$"
        assert re.search(row, out, re.MULTILINE), (rule_id, out)

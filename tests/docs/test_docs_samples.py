"""Issue 25 point 7: the README and docs/ say what the service does today. Every generated sample
(``<!-- sample:begin -->`` blocks, tests/docs/samples.py) equals what the live service answers — when it
does not, run ``scripts/update_docs_samples.py`` and review the diff —, the README's curl bodies are sent
and their answers checked for shape, and every count and list the prose states is computed here from the
manifest, the knowledge and the settings, so none of them can go stale unnoticed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import fields

import pytest

from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.hooks.registry import build_services
from cds_hooks.process.config import PREFIX, Settings
from tests.docs.samples import RENDERERS, REPO, blocks, curl_posts, service_client

README = (REPO / "README.md").read_text()
DOCS = {p.name: p.read_text() for p in (REPO / "docs").glob("*.md")}
MANIFEST = json.loads((REPO / "examples" / "manifest.json").read_text())
EXAMPLES = MANIFEST["examples"]
RULES = sorted(MANIFEST["rule_ids"])


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_generated_sample_is_what_the_service_answers_today(name: str):
    path, render = RENDERERS[name]
    assert name in blocks(path), f"{path.name} has no sample block {name!r}"
    assert blocks(path)[name] == render(), (
        f"{path.name}: the {name!r} sample differs from the live answer: run scripts/update_docs_samples.py"
    )


def test_readme_curl_calls_answer_with_the_documented_shape():
    """O1–O6 on the README's own request: 200, every card with the members a card has, and the sentence
    after the sample holds (an empty medicationStatements Bundle gives no card)."""
    client = service_client()
    posts = curl_posts(README)
    assert [path for path, _ in posts] == ["/cds-services/immune-insulin-resistance"]
    path, body = posts[0]
    response = client.post(path, json=body)
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert cards
    for card in cards:
        assert {"uuid", "summary", "indicator", "detail", "source", "links"} <= set(card)
        assert {"label", "url", "topic"} <= set(card["source"])
        if card.get("suggestions"):
            assert card["selectionBehavior"] and all("isRecommended" in s for s in card["suggestions"])
    # Every prefetch key of the discovery is in the body: nothing had to be fetched (else: 412).
    discovery = client.get("/cds-services").get_json()["services"][0]
    assert sorted(body["prefetch"]) == sorted(discovery["prefetch"])
    assert 'With an empty `medicationStatements` Bundle the answer is `{"cards": []}`.' in README
    body["prefetch"]["medicationStatements"] = {"resourceType": "Bundle", "type": "searchset"}
    assert client.post(path, json=body).get_json() == {"cards": []}
    # The discovery curl line prints JSON with the services.
    assert "curl -s http://127.0.0.1:8080/cds-services | python3 -m json.tool" in README
    assert [s["id"] for s in client.get("/cds-services").get_json()["services"]] == [
        "immune-insulin-resistance",
        "insulin-order-select",
        "insulin-order-sign",
    ]


def test_readme_names_every_rule_id_every_prefetch_key_and_discovery_mentions_every_rule():
    topics = re.search(r"\*\*Card topics\.\*\*(.*?)\n\n", README, re.S).group(1)  # type: ignore[union-attr]
    assert (
        sorted(
            re.findall(r"`([a-z-]+)`", topics.split("code` = the id of the rule that produced")[1])[
                : len(RULES)
            ]
        )
        == RULES
    )
    prefetch = re.search(r"\*\*Prefetch\.\*\*(.*?)Per key:", README, re.S).group(1)  # type: ignore[union-attr]
    keys = sorted(build_services(default_knowledge())["immune-insulin-resistance"].prefetch)
    assert sorted(k for k in re.findall(r"`(\w+)`", prefetch) if k in keys) == keys
    description = build_services(default_knowledge())["immune-insulin-resistance"].description
    for subject in (
        "animal",
        "insulin-antibody",
        "type B",
        "insulin autoimmune syndrome",
        "ataxia",
        "glucocorticoid",
    ):
        assert subject in description
    assert "insulin\n  autoimmune syndrome" in README.split("## Quick start")[0]  # the intro's card list


def test_readme_configuration_table_lists_every_setting():
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = [
        PREFIX + f.name.upper() for f in fields(Settings) if f"`{PREFIX}{f.name.upper()}`" not in table
    ]
    # Shared rows: `CDS_HOOKS_JKU_CACHE_TTL` / `CDS_HOOKS_JKU_TIMEOUT`.
    missing = [m for m in missing if m not in table]
    assert missing == []


def test_counts_in_readme_and_docs_match_the_manifest_and_the_vignettes():
    n = len(EXAMPLES)
    no_card = sum(1 for e in EXAMPLES if not e["expected_rules"])
    two = sum(1 for e in EXAMPLES if len(e["expected_rules"]) == 2)
    last = EXAMPLES[-1]["patient_id"]
    vignettes = len(list((REPO / "tests" / "vignettes" / "cases").glob("*.json")))
    assert f"loads the {n} example patients" in README
    assert f"Clinical vignettes ({vignettes} hand-written patients" in README
    assert f"{n} synthetic patients" in DOCS["examples.md"]
    assert f"{no_card} examples expect no card, and {two} expect two cards" in DOCS["examples.md"]
    listed = re.search(r"Rule ids \(issue 3\):(.*?)\n[A-Z]", DOCS["examples.md"], re.S).group(1)  # type: ignore[union-attr]
    assert sorted(re.findall(r"`([a-z-]+)`", listed)) == RULES
    assert f"(`ex01` … `{last}`)" in DOCS["demo.md"]
    assert f"Loading {n} example patients" in DOCS["demo.md"]
    assert f"Example patients:            {n} " in DOCS["demo.md"]
    assert re.search(rf"\[#+\.+\] \d+/{n}`", DOCS["cli.md"])
    for stale in ("/38`", "38 (dates", "`ex38`)"):
        assert stale not in DOCS["cli.md"] + DOCS["demo.md"]


def screen_sample(n: int) -> str:
    """The summary ``cds-hooks screen --all`` prints for the example population (every example gets exactly
    its expected cards: tests/e2e, tests/cli/test_screen_examples.py)."""
    with_cards = sum(1 for e in EXAMPLES if e["expected_rules"])
    lines = [
        f"Screened {n} patients on http://127.0.0.1:8081/fhir: {with_cards} with cards, "
        f"{n - with_cards} without cards, 0 errors.",
        "",
        "rule id                       patients  cards per 1,000 screened",
    ]
    for rule in RULES:
        patients = sum(1 for e in EXAMPLES if rule in e["expected_rules"])
        lines.append(f"{rule:<29}{patients:>9}{patients / n * 1000:>26.1f}")
    lines.append(f"{'(errors)':<29}{0:>9}")
    return "\n".join(lines)


@pytest.mark.parametrize("where", ["README.md", "cli.md"])
def test_screen_sample_matches_the_population(where: str):
    text = README if where == "README.md" else DOCS["cli.md"]
    assert screen_sample(len(EXAMPLES)) in text


def test_readme_card_summary_example_is_one_the_screen_run_printed():
    """The README's example summary is ex04's as ``screen`` printed it (docs/cli.md's screen-all-csv
    sample, which tests/cli/test_screen_examples.py compares with a real run)."""
    quoted = re.search(r"decisive values, e\.g\. \"(.*?)\" \(ex04\)", README, re.S)
    assert quoted, "README.md: no example summary quoted for ex04"
    csv_rows = blocks(REPO / "docs" / "cli.md")["screen-all-csv"]
    assert 'ex04,animal-insulin-switch,"' + " ".join(quoted.group(1).split()) + '"' in csv_rows


def test_cli_help_has_no_raw_markup():
    for command in (["demo"], ["serve"], ["evaluate"], ["screen"], []):
        out = subprocess.run(
            [sys.executable, "-m", "cds_hooks", *command, "--help"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "``" not in out, (command, out[:300])
    demo = subprocess.run(
        [sys.executable, "-m", "cds_hooks", "demo", "--help"], capture_output=True, text=True
    ).stdout
    assert "cds-hooks demo: a local FHIR server with the example patients" in demo


def test_readme_keeps_the_two_contract_commands():
    assert "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/cds-hooks serve" in README
    assert "./scripts/test.sh" in README

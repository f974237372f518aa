"""Issue 21 point 1: each rule is told once, and what it tells is what its code does.

A rule's page (``/sources/<rule-id>``), the "why this card" table, the thresholds required at start and
the order hooks are derived from its declaration (``clinical/rules/<rule>.py``). These tests read the
code of every finding and rule (its AST, following the calls it makes into the clinical core) and hold
the declarations to it: a threshold a rule reads that its page does not list fails, and so does a page
that lists a threshold the rule never reads. Before issue 21 the pages were a hand-written list in
``knowledge/cards/*.toml`` and had drifted (type B omitted ``ana_titre_type_b``,
``tdd_type_b_support_per_kg`` and ``bmi_type_b_support``; the glucocorticoid page
``glucocorticoid_replacement_max``; the antibody page ``animal_insulin_past_years``):
``test_the_drift_issue_21_found_is_gone`` keeps those.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path

import pytest

from cds_hooks.clinical import findings, switch_dose
from cds_hooks.clinical.cards import switch_order
from cds_hooks.clinical.findings import LAB_THRESHOLDS, THRESHOLDS_READ, Findings
from cds_hooks.clinical.knowledge import KnowledgeError, default_knowledge, load_knowledge
from cds_hooks.clinical.rules import FACT_THRESHOLDS, RULES, RULES_BY_ID, Rule, required_thresholds

KNOWLEDGE = default_knowledge()
THRESHOLD_NAMES = frozenset(KNOWLEDGE.thresholds)
FINDING_FIELDS = frozenset(f.name for f in fields(Findings))


def _reads(functions: list[Callable[..., object]]) -> tuple[set[str], set[str]]:
    """(threshold names, ``Findings`` fields) that ``functions`` read, following the calls they make to
    functions of the clinical core (other rules included: a rule that defers to another reads it)."""
    thresholds: set[str] = set()
    fields_read: set[str] = set()
    seen: set[Callable[..., object]] = set()
    todo = list(functions)
    while todo:
        fn = todo.pop()
        if fn in seen:
            continue
        seen.add(fn)
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                thresholds |= {node.value} & THRESHOLD_NAMES
                thresholds |= set(LAB_THRESHOLDS.get(node.value, ()))
            elif isinstance(node, ast.Attribute) and node.attr in FINDING_FIELDS:
                fields_read.add(node.attr)
            if isinstance(node, ast.Call):
                callee = _resolve(node.func, fn.__globals__)
                if isinstance(callee, types.FunctionType) and callee.__module__.startswith(
                    "cds_hooks.clinical"
                ):
                    todo.append(callee)
    return thresholds, fields_read


def _resolve(func: ast.expr, scope: dict[str, object]) -> object:
    if isinstance(func, ast.Name):
        return scope.get(func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        owner = scope.get(func.value.id)
        return getattr(owner, func.attr, None) if isinstance(owner, types.ModuleType) else None
    return None


def rule_problems(rule: Rule) -> list[str]:
    """What the rule's declaration says that its code does not do, or the other way round."""
    literal, read_fields = _reads([f for f in (rule.evaluate, rule.order) if f is not None])
    read = literal | {t for name in read_fields for t in THRESHOLDS_READ.get(name, ())}
    if rule.switch:
        read |= set(switch_dose.THRESHOLDS)
    page = set(rule.thresholds)
    problems = [f"{rule.id} reads {name} but its page does not list it" for name in sorted(read - page)]
    problems += [f"{rule.id}'s page lists {name}, which it never reads" for name in sorted(page - read)]
    return problems


def test_every_finding_declares_the_thresholds_its_code_reads() -> None:
    for name, declared in THRESHOLDS_READ.items():
        assert name in FINDING_FIELDS, name
        read, _ = _reads([getattr(findings, name)])
        assert read == set(declared), (name, sorted(read ^ set(declared)))


def test_derive_reads_no_threshold_but_through_a_declared_finding() -> None:
    read, _ = _reads([findings.derive])
    assert read <= {t for declared in THRESHOLDS_READ.values() for t in declared}


def test_the_switch_sizing_declares_what_it_reads() -> None:
    functions = [switch_dose.reduction, switch_dose.new_dose, switch_dose.plan_switch]
    functions += [
        switch_order.switch_suggestion,
        switch_order.switch_phrases,
        switch_order.replace_draft_suggestion,
    ]
    read, _ = _reads(functions)
    assert read == set(switch_dose.THRESHOLDS)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_a_rule_page_lists_exactly_the_thresholds_the_rule_reads(rule: Rule) -> None:
    assert rule_problems(rule) == []


def test_the_check_fails_on_a_rule_that_drifts() -> None:
    """The check above can fail: a type B declaration without its autoimmunity criterion (the page
    before issue 21) and one with a threshold it never reads are both caught."""
    type_b = RULES_BY_ID["type-b-insulin-resistance"]
    dropped = replace(type_b, criteria=tuple(c for c in type_b.criteria if c.finding != "ana_type_b"))
    assert "type-b-insulin-resistance reads ana_titre_type_b but its page does not list it" in rule_problems(
        dropped
    )
    padded = replace(type_b, reads=("labile_cv",))
    assert rule_problems(padded) == ["type-b-insulin-resistance's page lists labile_cv, which it never reads"]


def test_the_drift_issue_21_found_is_gone() -> None:
    assert {"ana_titre_type_b", "tdd_type_b_support_per_kg", "bmi_type_b_support"} <= set(
        RULES_BY_ID["type-b-insulin-resistance"].thresholds
    )
    assert "glucocorticoid_replacement_max" in RULES_BY_ID["glucocorticoid-hyperglycemia"].thresholds
    assert "animal_insulin_past_years" in RULES_BY_ID["insulin-antibody-workup"].thresholds


def test_card_wording_lists_no_thresholds_or_tests_of_its_own() -> None:
    """The TOML holds the words; the thresholds and tests of a page come from the rule declaration."""
    for path in Path(KNOWLEDGE.root, "cards").glob("*.toml"):
        text = path.read_text()
        assert "\nthresholds =" not in text and "\nworkup =" not in text, path.name


def test_every_rule_has_its_card_wording_and_each_card_its_rule() -> None:
    assert set(RULES_BY_ID) == set(KNOWLEDGE.wording.cards)


def test_the_shipped_knowledge_has_every_threshold_the_rules_read() -> None:
    assert required_thresholds() <= THRESHOLD_NAMES
    assert set(FACT_THRESHOLDS) <= required_thresholds()


def test_a_knowledge_without_a_threshold_a_rule_reads_is_refused(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE.root, root)
    path = root / "thresholds.toml"
    text = path.read_text()
    start = text.index("[ana_titre_type_b]")
    end = text.index("\n[", start + 1)
    path.write_text(text[:start] + text[end + 1 :])
    with pytest.raises(KnowledgeError, match="missing thresholds: ana_titre_type_b"):
        load_knowledge(root, env={}, required_thresholds=required_thresholds())

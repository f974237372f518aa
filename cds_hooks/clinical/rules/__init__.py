"""The clinical rules, one module each, each declaring itself once as a ``Rule`` (see ``base``).

Card order is the order of ``RULES``: the most actionable first. Rule ids are the cards'
``source.topic.code``; the clinical basis of every rule is the seed text and knowledge/thresholds.toml,
the wording of each card knowledge/cards/<rule-id>.toml.
"""

from __future__ import annotations

from types import MappingProxyType

from cds_hooks.clinical.findings import LAB_THRESHOLDS
from cds_hooks.clinical.rules import (
    animal_insulin_switch,
    ataxia_telangiectasia_ir,
    glucocorticoid_hyperglycemia,
    insulin_antibody_workup,
    insulin_autoimmune_syndrome,
    type_b_insulin_resistance,
)
from cds_hooks.clinical.rules.base import (
    SCREENING,
    Criterion,
    Order,
    Rule,
    RuleInput,
    RuleResult,
    cited_references,
    evaluate_until_valid,
    rule_input,
    tests_to_propose,
)
from cds_hooks.clinical.rules.one_plan import share_out

__all__ = [
    "ANIMAL_INSULIN_SWITCH", "ATAXIA_TELANGIECTASIA", "GLUCOCORTICOID", "INSULIN_ANTIBODY_WORKUP",
    "INSULIN_AUTOIMMUNE_SYNDROME", "PATIENT_VIEW_RULES", "RULES", "RULES_BY_ID", "SCREENING", "TYPE_B",
    "Criterion", "Order", "Rule", "RuleInput", "RuleResult", "cited_references", "evaluate_rules",
    "evaluate_until_valid", "required_thresholds", "rule_input", "share_out", "tests_to_propose",
]  # fmt: skip

RULES: tuple[Rule, ...] = (
    insulin_antibody_workup.RULE,
    animal_insulin_switch.RULE,
    type_b_insulin_resistance.RULE,
    insulin_autoimmune_syndrome.RULE,
    ataxia_telangiectasia_ir.RULE,
    glucocorticoid_hyperglycemia.RULE,
)
RULES_BY_ID = MappingProxyType({rule.id: rule for rule in RULES})
PATIENT_VIEW_RULES = RULES

ANIMAL_INSULIN_SWITCH = animal_insulin_switch.ID
INSULIN_ANTIBODY_WORKUP = insulin_antibody_workup.ID
TYPE_B = type_b_insulin_resistance.ID
ATAXIA_TELANGIECTASIA = ataxia_telangiectasia_ir.ID
GLUCOCORTICOID = glucocorticoid_hyperglycemia.ID
INSULIN_AUTOIMMUNE_SYNDROME = insulin_autoimmune_syndrome.ID

# Thresholds the patient facts apply whatever the rule: what counts as a current MedicationRequest, and
# the titre at which an ANA is positive.
FACT_THRESHOLDS = ("medication_request_current_days", *(t for ts in LAB_THRESHOLDS.values() for t in ts))


def evaluate_rules(x: RuleInput, rules: tuple[Rule, ...] = RULES) -> list[RuleResult]:
    """Every rule that fires, as one plan: a test or referral on one card only (``one_plan``)."""
    return share_out([r for rule in rules if (r := rule.evaluate(x)) is not None])


def required_thresholds() -> frozenset[str]:
    """Every threshold a rule, its suggestion or the facts read: a knowledge without one cannot start."""
    return frozenset([*FACT_THRESHOLDS, *(t for rule in RULES for t in rule.thresholds)])

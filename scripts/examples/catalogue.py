"""The example patients are data (``patients.toml``); this is their interpreter.

Each ``[[patient]]`` table becomes a :class:`Spec`; its ``chart`` steps are run in order on a
:class:`~scripts.examples.chart.Chart`, each step naming a Chart method or one of :data:`PROCEDURES`
with that function's keyword arguments. Names the data uses (medicines and coded values in
``[concepts]``, code systems, routes) are resolved here, so a patient is added by writing a table, not
code. The background history is merged afterwards (:mod:`scripts.examples.background`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cds_hooks.fhir.builders import ATC, ICD10, LOINC, RXNORM, SNOMED

from .chart import ROUTES, Chart, Medicine, concept, insulin_dose, pump_rate, tablet_dose

CATALOGUE = Path(__file__).with_name("patients.toml")
SYSTEMS = {"atc": ATC, "rxnorm": RXNORM, "snomed": SNOMED, "icd10": ICD10, "loinc": LOINC}
# A hospital's own lab catalogue: the insulin-receptor antibody has no LOINC term (reference §1d).
HOSPITAL_LAB = "http://lab.riverside-hospital.example.org/fhir/CodeSystem/lab-tests"
PROJECT_LOCAL = "https://immune-ir-cds.example.org/fhir/CodeSystem/local-tests"


@dataclass(frozen=True)
class Spec:
    """One example patient: what the manifest says of it, its background and its chart's steps."""

    slug: str
    description: str
    expected: tuple[str, ...]
    profile: str  # carebundle profile for the background
    sex: str  # F / M
    age: int
    steps: tuple[dict[str, Any], ...]
    concepts: dict[str, dict[str, Any]]
    own_glycaemia: bool = True  # drop the background's recent glucose/HbA1c: the situation sets its own
    recent_panels: tuple[str, ...] | None = None  # carebundle panels at the latest visit (None: all)
    # carebundle draws adults: a child's chart leaves out its vital signs and problem list
    vitals: bool = True
    problem_list: bool = True

    def build(self, chart: Chart) -> None:
        """Run the chart's steps in order."""
        for step in self.steps:
            arguments = dict(_argument(k, v, self.concepts) for k, v in step.items() if k != "do")
            if step["do"] in PROCEDURES:
                PROCEDURES[step["do"]](chart, **arguments)
            else:
                getattr(chart, step["do"])(**arguments)


# ------------------------------------------------------------------------ procedures the data names


def t1dm(chart: Chart, years: int) -> None:
    """Type 1 diabetes diagnosed ``years`` ago."""
    chart.condition(
        "Type 1 diabetes mellitus without complications",
        icd="E10.9",
        snomed="46635009",
        onset_days_ago=years * 365 + 40,
    )


def ataxia(chart: Chart, **condition: Any) -> None:
    """Ataxia-telangiectasia (coded as ``condition`` says) and the immunoglobulin it is treated with."""
    chart.condition("Ataxia-telangiectasia syndrome", **condition)
    chart.request(
        Medicine("immune globulin, human 10 % (IVIG)", ((ATC, "J06BA02", "immunoglobulins, normal human"),)),
        dosage=[{"text": "0.4 g/kg every 4 weeks"}],
    )


def receptor_antibody(
    chart: Chart, days_ago: float, *, project_code: bool = False, status: str = "final", **result: Any
) -> None:
    """An insulin-receptor antibody result: local code + text only (no LOINC term exists); a
    ``registered`` one has no date yet."""
    system, code = (PROJECT_LOCAL, "INSR-AB") if project_code else (HOSPITAL_LAB, "INSRAB")
    chart.lab(
        code,
        "Insulin receptor antibody",
        days_ago,
        system=system,
        status=status,
        when="dateTime" if status != "registered" else "none",
        kind="lab",
        **result,
    )


PROCEDURES: dict[str, Callable[..., None]] = {
    "t1dm": t1dm,
    "ataxia": ataxia,
    "receptor_antibody": receptor_antibody,
}


# ------------------------------------------------------------------------------- resolving the data


def _codings(rows: list[list[str]]) -> tuple[tuple[str, str, str], ...]:
    return tuple((SYSTEMS[system], code, display) for system, code, display in rows)


def _concept(value: str | dict[str, Any], concepts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    table = concepts[value] if isinstance(value, str) else value
    return concept(table["text"], *_codings(table.get("coding", [])))


def _medicine(value: str | dict[str, Any], concepts: dict[str, dict[str, Any]]) -> Medicine:
    table = concepts[value] if isinstance(value, str) else value
    return Medicine(
        table["text"], _codings(table.get("coding", [])), table.get("reference"), table.get("form")
    )


def _dosage(table: dict[str, Any]) -> dict[str, Any]:
    """An insulin dose (``units``), a pump's basal rate (``units_per_hour``), a tablet dose (``mg`` or
    ``tablets``) or a dosage as written."""
    if "units" in table:
        return insulin_dose(**table)
    if "units_per_hour" in table:
        return pump_rate(**table)
    if "mg" in table or "tablets" in table:
        return tablet_dose(**table)
    return {"text": table["text"], **({"route": ROUTES[table["route"]]} if "route" in table else {})}


def _argument(key: str, value: Any, concepts: dict[str, dict[str, Any]]) -> tuple[str, Any]:
    """A step's argument as the Chart takes it: names and tables become medicines, doses and
    concepts; a lab's ``quantity``, ``string`` or ``concept`` is its one ``value``."""
    if key == "medicine":
        return key, _medicine(value, concepts)
    if key == "dosage":
        return key, [_dosage(d) for d in value]
    if key == "quantity":
        return "value", tuple(value)
    if key == "string":
        return "value", value
    if key == "concept":
        return "value", _concept(value, concepts)
    return key, value


def load(path: Path = CATALOGUE) -> tuple[tuple[str, ...], list[Spec]]:
    """The rule ids and the patients of the catalogue, checked to be numbered in order."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    specs = []
    for number, table in enumerate(data["patient"], start=1):
        if table["id"] != f"ex{number:02d}":
            raise SystemExit(f"{path.name}: patient {table['id']} stands at position {number}")
        unknown = set(table["expected"]) - set(data["rule_ids"])
        if unknown:
            raise SystemExit(f"{path.name}: {table['id']} expects unknown rule ids {sorted(unknown)}")
        specs.append(
            Spec(
                slug=table["slug"],
                description=table["description"],
                expected=tuple(sorted(table["expected"])),
                profile=table["profile"],
                sex=table["sex"],
                age=table["age"],
                steps=tuple(table.get("chart", [])),
                concepts=data["concepts"],
                own_glycaemia=table.get("own_glycaemia", True),
                recent_panels=tuple(table["recent_panels"]) if "recent_panels" in table else None,
                vitals=table.get("vitals", True),
                problem_list=table.get("problem_list", True),
            )
        )
    return tuple(data["rule_ids"]), specs


RULE_IDS, EXAMPLES = load()

"""The hazard log (issue 22 E15, DCB0129-style): one source, ``docs/safety/hazards.toml``.

``docs/safety/hazard-log.md`` and the generated blocks of ``docs/safety/safety-case.md`` (the residual
risk summary and the list of defaults a deploying site must review) are rendered from it and from
``knowledge/``; ``tests/safety/test_hazard_log.py`` fails when they are out of date, when a hazard names a
test pytest does not collect or would skip, or when the log breaks its own rules (below). Commands:

    .venv/bin/python -m tests.safety.hazard_log --write   # re-render the pages after an edit
    .venv/bin/python -m tests.safety.hazard_log --check   # what the test checks, as a report

Rules of the log: every hazard has a cause, effect, harm, controls with the code that implements them and
at least one test; risk ratings are never written down, they follow from severity x likelihood through the
DCB0129/DCB0160 matrix (``MATRIX``); the residual risk is no higher than the initial one and below 4
("mandatory elimination or control"), and a residual 3 ("undesirable") carries a justification.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HAZARDS = Path("docs/safety/hazards.toml")
HAZARD_LOG_PAGE = Path("docs/safety/hazard-log.md")
SAFETY_CASE_PAGE = Path("docs/safety/safety-case.md")
KNOWLEDGE = Path("knowledge")

# DCB0129 / DCB0160 clinical risk matrix (NHS England; as published in the UK Core hazard log): rows are
# likelihood from "Very low" to "Very high", columns severity (consequence) from "Minor" to "Catastrophic".
SEVERITIES = ("Minor", "Significant", "Considerable", "Major", "Catastrophic")
LIKELIHOODS = ("Very low", "Low", "Medium", "High", "Very high")
MATRIX = (
    (1, 1, 2, 2, 3),
    (1, 2, 2, 3, 4),
    (2, 2, 3, 3, 4),
    (2, 3, 3, 4, 5),
    (3, 4, 4, 5, 5),
)
RATINGS = {
    1: "Acceptable, no further action required.",
    2: "Acceptable where the cost of further reduction outweighs the benefits gained.",
    3: "Undesirable: acceptable only when further risk reduction is impractical.",
    4: "Mandatory elimination or control to reduce risk to an acceptable level.",
    5: "Unacceptable.",
}
HIGHEST_RESIDUAL = 3

# A threshold's source that says it is not a published criterion: the deploying site must review it.
REVIEW_MARK = re.compile(r"design choice|needs (endocrinologist|clinical) (review|sign-off)", re.I)

_ID = re.compile(r"H\d{2}")
_TEST_ID = re.compile(r"[\w/.-]+\.py::\w+(\[[^\]]+\])?")
_FIELDS = {
    "id", "title", "description", "causes", "effect", "harm", "initial", "controls", "code", "tests",
    "residual", "justification", "site_actions",
}  # fmt: skip
_REQUIRED = _FIELDS - {"justification", "site_actions"}


class HazardLogError(ValueError):
    """The hazard log breaks one of its rules; the message lists every problem."""


@dataclass(frozen=True)
class Risk:
    """Severity x likelihood; the rating is the matrix's, never written by hand."""

    severity: str
    likelihood: str

    @property
    def rating(self) -> int:
        return MATRIX[LIKELIHOODS.index(self.likelihood)][SEVERITIES.index(self.severity)]

    def __str__(self) -> str:
        return f"{self.severity} × {self.likelihood} → {self.rating}"


@dataclass(frozen=True)
class Hazard:
    id: str
    title: str
    description: str
    causes: tuple[str, ...]
    effect: str
    harm: str
    initial: Risk
    controls: tuple[str, ...]
    code: tuple[str, ...]
    tests: tuple[str, ...]
    residual: Risk
    justification: str = ""
    site_actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviewItem:
    """A shipped default that is a design choice: the site's clinicians review it before go-live."""

    name: str
    value: str
    where: str
    description: str
    source: str


def _risk(raw: object, where: str, problems: list[str]) -> Risk | None:
    if not isinstance(raw, dict) or set(raw) != {"severity", "likelihood"}:
        problems.append(f"{where}: needs exactly severity and likelihood")
        return None
    if raw["severity"] not in SEVERITIES:
        problems.append(f"{where}: severity {raw['severity']!r} is not one of {', '.join(SEVERITIES)}")
        return None
    if raw["likelihood"] not in LIKELIHOODS:
        problems.append(f"{where}: likelihood {raw['likelihood']!r} is not one of {', '.join(LIKELIHOODS)}")
        return None
    return Risk(raw["severity"], raw["likelihood"])


def _texts(raw: object, where: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(x, str) and x.strip() for x in raw):
        problems.append(f"{where}: needs a non-empty list of texts")
        return ()
    return tuple(raw)


def _hazard(raw: dict, root: Path, problems: list[str]) -> Hazard | None:
    hid = str(raw.get("id", "?"))
    unknown, missing = set(raw) - _FIELDS, _REQUIRED - set(raw)
    if unknown or missing:
        problems.append(f"{hid}: unknown fields {sorted(unknown)}, missing fields {sorted(missing)}")
        return None
    if not _ID.fullmatch(hid):
        problems.append(f"{hid}: a hazard id is H and two digits")
    for name in ("title", "description", "effect", "harm"):
        if not isinstance(raw[name], str) or not raw[name].strip():
            problems.append(f"{hid}: {name} needs a text")
    lists = {
        name: _texts(raw[name], f"{hid}: {name}", problems)
        for name in ("causes", "controls", "code", "tests", "site_actions")
        if name in raw
    }
    for path in lists["code"]:
        if not (root / path).exists():
            problems.append(f"{hid}: code {path} does not exist")
    for test_id in lists["tests"]:
        if not _TEST_ID.fullmatch(test_id):
            problems.append(f"{hid}: {test_id!r} is not a pytest node id (path/test_x.py::test_name[case])")
    if len(set(lists["tests"])) != len(lists["tests"]):
        problems.append(f"{hid}: a test is named twice")
    initial = _risk(raw["initial"], f"{hid}: initial", problems)
    residual = _risk(raw["residual"], f"{hid}: residual", problems)
    justification = str(raw.get("justification", "")).strip()
    if initial and residual:
        if residual.rating > initial.rating:
            problems.append(f"{hid}: residual risk {residual.rating} above the initial {initial.rating}")
        if residual.rating > HIGHEST_RESIDUAL:
            problems.append(f"{hid}: residual risk {residual.rating}: {RATINGS[residual.rating]}")
        if residual.rating == HIGHEST_RESIDUAL and not justification:
            problems.append(f"{hid}: a residual risk of 3 needs a justification (why no further reduction)")
    if not initial or not residual:
        return None
    texts = {name: raw[name] for name in ("title", "description", "effect", "harm")}
    return Hazard(id=hid, initial=initial, residual=residual, justification=justification, **texts, **lists)


def load_hazards(path: Path, root: Path = REPO) -> list[Hazard]:
    """The hazards of ``path``, validated against the rules of the log (module docstring)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HazardLogError(f"{path}: {exc}") from exc
    problems: list[str] = []
    if set(data) != {"hazard"}:
        problems.append(f"{path}: only [[hazard]] tables belong here, found {sorted(data)}")
    hazards = [h for raw in data.get("hazard", []) if (h := _hazard(raw, root, problems))]
    ids = [h.id for h in hazards]
    problems += [f"{hid}: the id is used twice" for hid in sorted({i for i in ids if ids.count(i) > 1})]
    if ids != sorted(ids):
        problems.append("hazards are listed in id order")
    if problems:
        raise HazardLogError("\n".join(problems))
    return hazards


def collect(test_ids: Iterable[str], root: Path = REPO) -> dict[str, str | None]:
    """Every node id pytest collects from the files ``test_ids`` name, with the reason a skip or xfail
    marker would skip it here (None: it runs). Pytest's own collection, so parametrized ids are real."""
    files = sorted({tid.split("::", 1)[0] for tid in test_ids if (root / tid.split("::", 1)[0]).is_file()})
    if not files:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "collected.json"
        command = [
            sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
            "-p", "tests.safety.plugin", f"--hazard-collect-out={out}", *files,
        ]  # fmt: skip
        result = subprocess.run(
            command, cwd=root, capture_output=True, text=True, timeout=300, env=_env(), check=False
        )
        if result.returncode != 0 or not out.is_file():
            raise HazardLogError(
                f"collecting {' '.join(files)} failed:\n{result.stdout[-3000:]}{result.stderr}"
            )
        return json.loads(out.read_text(encoding="utf-8"))


def _env() -> dict[str, str]:
    """This environment, with this checkout importable (for the plugin) and no inherited -k or -n."""
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def evidence_problems(
    hazards: Sequence[Hazard], collected: dict[str, str | None], root: Path = REPO
) -> list[str]:
    """A hazard naming a test that does not exist, or one a marker skips here."""
    problems = []
    for hazard in hazards:
        for test_id in hazard.tests:
            path = test_id.split("::", 1)[0]
            matches = {n: why for n, why in collected.items() if n == test_id or n.startswith(test_id + "[")}
            if not (root / path).is_file():
                problems.append(f"{hazard.id}: {test_id}: no file {path}")
            elif not matches:
                problems.append(f"{hazard.id}: {test_id}: pytest collects no such test")
            for nodeid, why in sorted(matches.items()):
                if why:
                    problems.append(f"{hazard.id}: {nodeid} is skipped here ({why})")
    return problems


# --- the pages ---------------------------------------------------------------------------------------


def review_items(knowledge: Path) -> list[ReviewItem]:
    """The shipped defaults that are design choices: thresholds whose source says so, and each card's
    snooze days (every card file says they are a design choice)."""
    thresholds = tomllib.loads((knowledge / "thresholds.toml").read_text(encoding="utf-8"))
    items = [
        ReviewItem(
            name, f"{t['value']} {t['unit']}", "knowledge/thresholds.toml", t["description"], t["source"]
        )
        for name, t in thresholds.items()
        if REVIEW_MARK.search(t["source"])
    ]
    for card in sorted((knowledge / "cards").glob("[!_]*.toml")):
        wording = tomllib.loads(card.read_text(encoding="utf-8"))
        if "snooze_days" in wording:
            items.append(
                ReviewItem(
                    f"snooze_days ({card.stem})",
                    f"{wording['snooze_days']} days",
                    f"knowledge/cards/{card.name}",
                    "How long an override ('already addressed', 'patient declined', 'remind me') keeps "
                    "the card away for the patient unless its evidence changes.",
                    "design choice, needs endocrinologist review (comment in the card file)",
                )
            )
    return items


INTRO = """
<!-- Generated from docs/safety/hazards.toml by `.venv/bin/python -m tests.safety.hazard_log --write`.
     Edit the TOML, not this page: tests/safety/test_hazard_log.py fails when the two differ. -->

Clinical hazards of the immune-mediated insulin resistance CDS Hooks service, kept the way DCB0129
asks of a manufacturer: each hazard with its causes, effect and harm, the initial risk, the controls
in the code, the tests that show each control works, and the residual risk. The safety case
([safety-case.md](safety-case.md)) summarises the residual risk and what a deploying site must do.

Every test named here is collected by pytest and is not skipped: `tests/safety/test_hazard_log.py`
fails otherwise, and a test session that runs a named test and skips it fails
(`tests/safety/plugin.py`). Adding evidence is one line in the hazard's `tests` list.

## Risk matrix (DCB0129 / DCB0160)

Risk rating from severity (consequence) and likelihood, as in NHS England's DCB0129/DCB0160
clinical risk management guidance (the matrix as reproduced in the UK Core hazard log). The ratings
below are computed from this table, never written by hand.
"""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _matrix_table() -> list[str]:
    head = "| likelihood \\ severity | " + " | ".join(SEVERITIES) + " |"
    rows = [head, "|---" * (len(SEVERITIES) + 1) + "|"]
    for likelihood, row in reversed(list(zip(LIKELIHOODS, MATRIX, strict=True))):
        rows.append(f"| **{likelihood}** | " + " | ".join(str(r) for r in row) + " |")
    rows += ["", "| rating | meaning |", "|---|---|"]
    rows += [f"| {r} | {meaning} |" for r, meaning in sorted(RATINGS.items(), reverse=True)]
    return rows


def render_log(hazards: Sequence[Hazard]) -> str:
    """``docs/safety/hazard-log.md``: the matrix, a summary table, then every hazard in full."""
    lines = [
        "# Hazard log",
        "",
        *INTRO.strip("\n").splitlines(),
        "",
        *_matrix_table(),
        "",
        "## Summary",
        "",
        "| id | hazard | initial risk | residual risk | tests |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| [{h.id}](#{h.id.lower()}) | {_cell(h.title)} | {h.initial} | {h.residual} | {len(h.tests)} |"
        for h in hazards
    ]
    for h in hazards:
        lines += ["", f"## {h.id}", "", f"**{h.title}.** {h.description}", "", "**Causes**", ""]
        lines += [f"- {c}" for c in h.causes]
        lines += ["", f"**Effect.** {h.effect}", "", f"**Harm.** {h.harm}", ""]
        lines += [f"**Initial risk:** {h.initial.severity} × {h.initial.likelihood} → **{h.initial.rating}**"]
        lines += ["", "**Controls in the code**", ""]
        lines += [f"- {c}" for c in h.controls]
        lines += ["", "Code: " + ", ".join(f"[`{p}`](../../{p})" for p in h.code), ""]
        lines += [
            f"**Residual risk:** {h.residual.severity} × {h.residual.likelihood} → **{h.residual.rating}**"
        ]
        if h.justification:
            lines += ["", f"**Why no further reduction.** {h.justification}"]
        if h.site_actions:
            lines += ["", "**The deploying site**", ""]
            lines += [f"- {a}" for a in h.site_actions]
        lines += ["", "**Tests that show the controls work**", ""]
        lines += [f"- `{t}`" for t in h.tests]
    return "\n".join(lines) + "\n"


def render_residual(hazards: Sequence[Hazard]) -> str:
    """The safety case's residual risk summary: hazards by residual rating."""
    lines = ["| residual rating | meaning | hazards |", "|---|---|---|"]
    for rating in sorted({h.residual.rating for h in hazards}, reverse=True):
        named = ", ".join(
            f"[{h.id}](hazard-log.md#{h.id.lower()}) {h.title}"
            for h in hazards
            if h.residual.rating == rating
        )
        lines.append(f"| {rating} | {RATINGS[rating]} | {named} |")
    return "\n".join(lines)


def render_review(items: Sequence[ReviewItem]) -> str:
    """The safety case's list of defaults the site's clinicians review."""
    lines = []
    for item in items:
        lines.append(f"- `{item.name}` = {item.value} ({item.where}): {_cell(item.description)}")
        lines.append(f"  Source: {_cell(item.source)}")
    return "\n".join(lines)


def review_names(page: str) -> set[str]:
    """The default names listed in the safety case's review block (what the site was told to review)."""
    return set(re.findall(r"^- `([^`]+)`", block(page, "site-review"), re.M))


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- BEGIN generated: {name} -->", f"<!-- END generated: {name} -->"


def block(page: str, name: str) -> str:
    begin, end = _markers(name)
    start, stop = page.find(begin), page.find(end)
    if start < 0 or stop < start:
        raise HazardLogError(f"the page has no {begin} … {end} block")
    return page[start + len(begin) : stop].strip("\n")


def with_block(page: str, name: str, content: str) -> str:
    begin, end = _markers(name)
    old = block(page, name)
    return page.replace(
        f"{begin}\n{old}\n{end}" if old else f"{begin}\n{end}", f"{begin}\n{content}\n{end}", 1
    )


def rendered_safety_case(page: str, hazards: Sequence[Hazard], items: Sequence[ReviewItem]) -> str:
    page = with_block(page, "residual-risk", render_residual(hazards))
    return with_block(page, "site-review", render_review(items))


def check(root: Path = REPO, hazards_path: Path | None = None, pages: bool = True) -> list[str]:
    """Every problem of the log: its rules, its evidence, and (``pages``) whether the pages are current."""
    try:
        hazards = load_hazards(hazards_path or root / HAZARDS, root)
        problems = evidence_problems(hazards, collect([t for h in hazards for t in h.tests], root), root)
    except HazardLogError as exc:
        return str(exc).splitlines()
    if pages:
        if (root / HAZARD_LOG_PAGE).read_text(encoding="utf-8") != render_log(hazards):
            problems.append(
                f"{HAZARD_LOG_PAGE} is out of date: run python -m tests.safety.hazard_log --write"
            )
        case = (root / SAFETY_CASE_PAGE).read_text(encoding="utf-8")
        if case != rendered_safety_case(case, hazards, review_items(root / KNOWLEDGE)):
            problems.append(
                f"{SAFETY_CASE_PAGE} is out of date: run python -m tests.safety.hazard_log --write"
            )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.safety.hazard_log", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--write", action="store_true", help="re-render hazard-log.md and the safety case blocks"
    )
    parser.add_argument("--check", action="store_true", help="report every problem; exit 1 if there is one")
    parser.add_argument("--root", type=Path, default=REPO, help="project root (default: this checkout)")
    parser.add_argument("--hazards", type=Path, default=None, help="hazard log TOML (default: docs/safety/)")
    parser.add_argument("--no-pages", action="store_true", help="with --check: skip the pages' freshness")
    args = parser.parse_args(argv)
    if args.write:
        hazards = load_hazards(args.hazards or args.root / HAZARDS, args.root)
        (args.root / HAZARD_LOG_PAGE).write_text(render_log(hazards), encoding="utf-8")
        case_path = args.root / SAFETY_CASE_PAGE
        case = case_path.read_text(encoding="utf-8")
        case_path.write_text(
            rendered_safety_case(case, hazards, review_items(args.root / KNOWLEDGE)), "utf-8"
        )
    if args.check or not args.write:
        problems = check(args.root, args.hazards, pages=not args.no_pages)
        for problem in problems:
            print(problem)
        print("hazard log: " + (f"{len(problems)} problem(s)" if problems else "ok"))
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

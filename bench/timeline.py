"""``python -m bench.timeline``: how long the timeline page takes to build and render, in process.

The record: the benchmark's rule-triggering resources (``bench.generate``) plus 1,000 laboratory
Observations spread over two years (mostly glucose, with HbA1c, insulin, C-peptide and antibodies),
insulin and prednisone courses. Timed: facts → findings → rules → "why this card" → chart geometry →
Jinja2 rendering of the whole page (the FHIR fetch is not included: it is the FHIR server's time).
Prints the median and the 95th percentile over the runs; the budget is 300 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import timedelta

from flask import Flask, render_template

from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.fhir.resource_index import ResourceIndex
from cds_hooks.web.smart_app import bp
from cds_hooks.web.timeline.page import build_page

from .generate import NOW, observation, patient, trigger_resources

PID = "bench-timeline"
KINDS = (
    (0.80, ("2345-7", "Glucose [Mass/volume] in Serum or Plasma"), (60, 320), ("mg/dL", "mg/dL")),
    (0.08, ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"), (5.5, 10.5), ("%", "%")),
    (0.06, ("20448-7", "Insulin [Units/volume] in Serum or Plasma"), (5, 150), ("uIU/mL", "u[IU]/mL")),
    (0.06, ("1986-9", "C peptide [Mass/volume] in Serum or Plasma"), (0.5, 7), ("ng/mL", "ng/mL")),
)


def record(observations: int = 1000, seed: int = 12) -> ResourceIndex:
    rng = random.Random(seed)
    resources = [patient(PID)]
    for group in trigger_resources(PID, NOW).values():
        resources += group
    for i in range(observations):
        _, code, (low, high), unit = rng.choices(KINDS, weights=[k[0] for k in KINDS])[0]
        when = NOW - timedelta(days=rng.uniform(0, 730))
        value = round(rng.uniform(low, high), 1)
        resources.append(observation(f"{PID}-o{i}", PID, code, when, value=value, unit=unit))
    return ResourceIndex(resources)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.timeline", description=__doc__)
    parser.add_argument("--observations", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    knowledge = default_knowledge()
    app = Flask("bench")
    app.register_blueprint(bp)
    index = record(args.observations)
    timings, size = [], 0
    for _ in range(args.runs + 3):
        started = time.perf_counter()
        page = build_page(
            index,
            knowledge,
            patient_id=PID,
            now=NOW,
            start=NOW - timedelta(days=730),
            end=NOW,
            glucose_unit="mg/dL",
            rule="insulin-antibody-workup",
        )
        with app.test_request_context("/app/"):
            html = render_template(
                "app/timeline.html",
                page=page,
                unit_links={"mg/dL": "?", "mmol/L": "?"},
                card=None,
                from_value="",
                to_value="",
                open_mode=False,
            )
        timings.append((time.perf_counter() - started) * 1000)
        size = len(html)
    timings = sorted(timings[3:])  # the first runs warm the memos and the template cache
    p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
    print(f"timeline page, {args.observations} observations over 2 years, {args.runs} runs:")
    median = statistics.median(timings)
    print(f"  median {median:.0f} ms, p95 {p95:.0f} ms (budget 300 ms), page {size // 1024} kB")


if __name__ == "__main__":
    main()

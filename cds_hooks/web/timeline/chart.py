"""Geometry of the timeline chart: panels stacked on one time axis, in SVG user units.

Only numbers and already-formatted labels leave this module; the SVG itself is written by an
autoescaped Jinja2 template (``web/templates/app/chart.svg``), so text from the patient's record
can never become markup. (Altair + vl-convert took ~850 ms per chart here, far over the budget.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cds_hooks.clinical.facts.model import LabResult
from cds_hooks.web.timeline.series import (
    ANIMAL_INSULIN,
    ANTIBODY_KINDS,
    GLUCOCORTICOID,
    GLUCOSE_KINDS,
    HUMAN_INSULIN,
    IAS_TRIGGER,
    Timeline,
)

WIDTH = 420
LEFT = 40  # room for the y-axis labels
RIGHT = 12
PANEL_GAP = 30
LINE_PANEL = 100
ROW = 26  # one row of markers or bars
# The CSS class (app.css) of each medication group's bars.
BAR_STYLE = {
    ANIMAL_INSULIN: "animal",
    HUMAN_INSULIN: "human",
    GLUCOCORTICOID: "steroid",
    IAS_TRIGGER: "trigger",
}


@dataclass(frozen=True)
class Mark:
    x: float
    y: float
    label: str  # tooltip: "Glucose 268 mg/dL on 2026-05-01"
    style: str  # css class: "glucose", "positive", "negative", ...


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    y: float
    label: str
    style: str
    ongoing: bool


@dataclass(frozen=True)
class Rule:
    y: float
    label: str
    anchor: str = "end"  # labels alternate right/left so that close lines stay legible


@dataclass
class Panel:
    title: str
    top: float
    height: float
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)  # (points "x,y x,y", css class)
    marks: list[Mark] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    row_labels: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (label, css class) when several series


@dataclass
class Chart:
    title: str
    description: str
    width: int
    height: float
    left: int
    right: float
    x_ticks: list[tuple[float, str]]
    panels: list[Panel]


@dataclass(frozen=True)
class TimeScale:
    start: datetime
    end: datetime

    def __call__(self, when: datetime) -> float:
        span = (self.end - self.start).total_seconds() or 1.0
        fraction = (min(max(when, self.start), self.end) - self.start).total_seconds() / span
        return round(LEFT + fraction * (WIDTH - LEFT - RIGHT), 1)


def _nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    return [round(first + i * step, 10) for i in range(count + 2) if first + i * step <= high + step]


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:.0f}"


def _month_ticks(scale: TimeScale) -> list[tuple[float, str]]:
    days = (scale.end - scale.start).days
    every = 1 if days <= 120 else 3 if days <= 800 else 6 if days <= 1600 else 12
    ticks = []
    year, month = scale.start.year, scale.start.month
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        tick = scale.start.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0)
        if tick > scale.end:
            return ticks
        if (month - 1) % every == 0:
            ticks.append(
                (scale(tick), tick.strftime("%b %Y") if month == 1 or not ticks else tick.strftime("%b"))
            )


def _line_panel(
    title: str,
    top: float,
    series: list[tuple[str, list[LabResult]]],
    scale: TimeScale,
    thresholds: list[tuple[str, float, str]],
    convert: float = 1.0,
    unit: str = "",
) -> Panel:
    """Values as lines with points, and the thresholds as dashed reference lines."""
    values = [r.value / convert for _, results in series for r in results if r.value is not None]
    refs = [(name, value / convert) for name, value, _ in thresholds]
    pool = values + [v for _, v in refs]
    ticks = _nice_ticks(min([0.0, *pool]), max(pool) if pool else 1.0)
    low, high = ticks[0], ticks[-1]
    panel = Panel(title=title, top=top, height=LINE_PANEL)

    def y(value: float) -> float:
        return round(top + LINE_PANEL - (value - low) / ((high - low) or 1.0) * LINE_PANEL, 1)

    panel.y_ticks = [(y(t), _fmt(t)) for t in ticks]
    for i, (name, value) in enumerate(sorted(refs, key=lambda r: r[1])):
        label = f"{name.replace('_', ' ')} {_fmt(value)} {unit}".strip()
        panel.rules.append(Rule(y(value), label, "end" if i % 2 == 0 else "start"))
    drawn = [(style, results) for style, results in series if any(r.value is not None for r in results)]
    if len(drawn) > 1:
        panel.legend = [(style.replace("_", " "), style) for style, _ in drawn]
    for style, results in series:
        points = [(scale(r.when), y(r.value / convert), r) for r in results if r.value is not None]
        if len(points) > 1:
            panel.lines.append((" ".join(f"{px},{py}" for px, py, _ in points), style))
        panel.marks += [Mark(px, py, f"{r.evidence.text}", style) for px, py, r in points]
    return panel


def build_chart(timeline: Timeline, glucose_unit: str, glucose_factor: float) -> Chart:
    """All panels with data (glucose always), top to bottom, on one time axis."""
    scale = TimeScale(timeline.start, timeline.end)
    panels: list[Panel] = []
    top = 18.0

    def add(panel: Panel) -> None:
        nonlocal top
        panels.append(panel)
        top = panel.top + panel.height + PANEL_GAP

    convert = glucose_factor if glucose_unit != "mg/dL" else 1.0
    glucose = [(kind, timeline.labs.get(kind, [])) for kind in GLUCOSE_KINDS]
    add(
        _line_panel(
            f"Glucose ({glucose_unit})",
            top,
            glucose,
            scale,
            timeline.thresholds["glucose"],
            convert,
            glucose_unit,
        )
    )
    for kind, title in (("hba1c", "HbA1c (%)"), ("insulin", "Insulin (µIU/mL)"), ("c_peptide", "C-peptide")):
        if timeline.labs.get(kind):
            add(
                _line_panel(
                    title, top, [(kind, timeline.labs[kind])], scale, timeline.thresholds.get(kind, [])
                )
            )

    antibodies = [k for k in ANTIBODY_KINDS if timeline.labs.get(k)]
    if antibodies:
        panel = Panel("Antibodies (filled: positive, hollow: negative)", top, ROW * len(antibodies))
        for row, kind in enumerate(antibodies):
            cy = top + ROW * row + ROW / 2 + 5
            panel.row_labels.append((cy - 7, kind.replace("_", " ")))
            for r in timeline.labs[kind]:
                style = "positive" if r.positive else "negative" if r.positive is False else "unknown"
                panel.marks.append(Mark(scale(r.when), cy, r.evidence.text, style))
        add(panel)

    tdd = timeline.total_daily_dose()
    if tdd:
        panel = _line_panel(
            "Total daily insulin dose (U/day)", top, [], scale, timeline.thresholds["tdd"], unit="U/day"
        )
        # Reuse the panel's y scale: redo the scale with the dose values included.
        values = [v for _, v in tdd] + [v for _, v, _ in timeline.thresholds["tdd"]]
        ticks = _nice_ticks(0.0, max(values))
        high = ticks[-1] or 1.0

        def ty(value: float) -> float:
            return round(top + LINE_PANEL - value / high * LINE_PANEL, 1)

        panel.y_ticks = [(ty(t), _fmt(t)) for t in ticks]
        panel.rules = [
            Rule(ty(v), f"{n.replace('_', ' ')} {_fmt(v)} U/day") for n, v, _ in timeline.thresholds["tdd"]
        ]
        steps: list[str] = []
        for i, (when, units) in enumerate(tdd):
            x = scale(when)
            steps.append(f"{x},{ty(units)}")
            following = tdd[i + 1][0] if i + 1 < len(tdd) else timeline.end
            steps.append(f"{scale(following)},{ty(units)}")
            panel.marks.append(
                Mark(x, ty(units), f"Total daily insulin {_fmt(units)} U/day from {when.date()}", "tdd")
            )
        panel.lines.append((" ".join(steps), "tdd"))
        add(panel)

    if timeline.exposures:
        rows = sorted({(e.group, e.name) for e in timeline.exposures})
        panel = Panel("Medication exposure", top, ROW * len(rows))
        for row, (group, name) in enumerate(rows):
            cy = top + ROW * row
            panel.row_labels.append((cy + 9, name[:60]))
            for e in timeline.exposures:
                if (e.group, e.name) != (group, name):
                    continue
                x0 = scale(e.start) if e.start else scale(timeline.start)
                # Ongoing courses run to the right edge; a past one with no end date gets a stub.
                x1 = scale(e.end) if e.end else scale(timeline.end) if e.current else x0 + 4
                dose = f", {e.daily_units:g} U/day" if e.daily_units is not None else ""
                pred = f", prednisolone-equivalent {e.prednisolone_mg:g} mg/day" if e.prednisolone_mg else ""
                begun = e.start.date() if e.start else "unknown start"
                until = e.end.date() if e.end else "ongoing" if e.current else "end unknown"
                when = f"{begun} to {until}"
                style = BAR_STYLE[group]
                panel.bars.append(
                    Bar(
                        x0,
                        max(x1 - x0, 2.0),
                        cy + 13,
                        f"{name} ({group}){dose}{pred}: {when}",
                        style,
                        e.end is None,
                    )
                )
        add(panel)

    if timeline.conditions:
        conditions = sorted(timeline.conditions, key=lambda c: (c.when is None, c.when or timeline.start))
        panel = Panel("Conditions (onset; undated or earlier at the left edge)", top, ROW * len(conditions))
        for row, c in enumerate(conditions):
            cy = top + ROW * row + ROW / 2 + 5
            x = scale(c.when) if c.when else scale(timeline.start)
            panel.row_labels.append((cy - 7, c.name[:60]))
            label = f"{c.name} ({c.when.date() if c.when else 'undated'})"
            panel.marks.append(Mark(x, cy, label, "condition"))
        add(panel)

    return Chart(
        title=f"Timeline from {timeline.start.date()} to {timeline.end.date()}",
        description="Laboratory results, antibody results, insulin dose, medication courses and conditions "
        "on one time axis; the same data is in the table below.",
        width=WIDTH,
        height=top,
        left=LEFT,
        right=WIDTH - RIGHT,
        x_ticks=_month_ticks(scale),
        panels=panels,
    )


def default_range(now: datetime, years: int = 2) -> tuple[datetime, datetime]:
    return now - timedelta(days=365 * years), now

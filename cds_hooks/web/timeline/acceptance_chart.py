"""Geometry of the dashboard's chart: weekly acceptance rate per rule, 0–100 %, on one time axis."""

from __future__ import annotations

from datetime import datetime, timedelta

from cds_hooks.web.timeline.chart import LEFT, LINE_PANEL, RIGHT, WIDTH, Chart, Mark, Panel, TimeScale

STYLES = ("glucose", "hba1c", "insulin", "tdd", "glucose_fasting", "ogtt_2h")


def acceptance_chart(weeks: list[datetime], rates: dict[str, list[float | None]]) -> Chart:
    """``rates[rule][i]`` is the acceptance rate of the cards issued in the week starting ``weeks[i]``."""
    start, end = weeks[0], weeks[-1] + timedelta(days=7)
    scale = TimeScale(start, end)
    top = 18.0
    panel = Panel("Acceptance rate per week (%)", top, LINE_PANEL)

    def y(rate: float) -> float:
        return round(top + LINE_PANEL - rate * LINE_PANEL, 1)

    panel.y_ticks = [(y(t / 100), str(t)) for t in (0, 25, 50, 75, 100)]
    for i, (rule, values) in enumerate(sorted(rates.items())):
        style = STYLES[i % len(STYLES)]
        points = [
            (scale(week + timedelta(days=3.5)), y(rate), week, rate)
            for week, rate in zip(weeks, values, strict=True)
            if rate is not None
        ]
        if len(points) > 1:
            panel.lines.append((" ".join(f"{px},{py}" for px, py, _, _ in points), style))
        panel.marks += [
            Mark(px, py, f"{rule}: {rate:.0%} in the week of {week.date()}", style)
            for px, py, week, rate in points
        ]
        panel.row_labels.append((top + 12 + 11 * i, f"{rule}"))
    ticks = [(scale(w), w.strftime("%d %b")) for w in weeks[:: max(1, len(weeks) // 6)]]
    return Chart(
        title=f"Weekly acceptance rate per rule from {start.date()} to {end.date()}",
        description="One line per rule: the share of the week's cards that were accepted; "
        "the numbers are in the tables below.",
        width=WIDTH,
        height=top + LINE_PANEL + 30,
        left=LEFT,
        right=WIDTH - RIGHT,
        x_ticks=ticks,
        panels=[panel],
    )

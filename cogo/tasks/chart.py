"""The 30-day trend as a PNG inside Markdown: what the Dagster UI shows beside each materialization."""

from __future__ import annotations

import base64
import io

from cogo.tasks.report import STATUSES, DayPoint

STATUS_COLOURS = {
    "COMPLETED": "#2e7d32",
    "FAILED": "#c62828",
    "CANCELLED": "#9e9e9e",
    "RUNNING": "#1565c0",
    "PENDING": "#f9a825",
}


def trend_png(points: list[DayPoint]) -> bytes:
    """Tasks per day stacked by status, with the success rate on a second axis."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory only
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    days = [p.day for p in points]
    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=80)
    try:
        bottom = [0] * len(points)
        for status in STATUSES:
            heights = [p.tasks_by_status.get(status, 0) for p in points]
            ax.bar(days, heights, bottom=bottom, color=STATUS_COLOURS[status], label=status.lower(), width=0.8)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        ax.set_ylabel("tasks")
        # Headroom above the bars (and the 100 % line) keeps the legend off the data.
        ax.set_ylim(0, max(max(bottom), 1) * 1.3)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="upper left", fontsize=7, ncols=5, frameon=False)
        rate = ax.twinx()
        rate.plot(
            days, [None if p.success_rate is None else p.success_rate * 100 for p in points], color="black", lw=1.2
        )
        rate.set_ylim(0, 130)
        rate.set_yticks([0, 25, 50, 75, 100])
        rate.set_ylabel("success %")
        ax.set_title(f"Agent tasks per day, {days[0]:%Y-%m-%d} to {days[-1]:%Y-%m-%d} (UTC)", fontsize=9)
        fig.autofmt_xdate()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def trend_markdown(points: list[DayPoint]) -> str:
    encoded = base64.b64encode(trend_png(points)).decode("ascii")
    return f"![tasks per day, last {len(points)} days](data:image/png;base64,{encoded})"

"""The numbers the results page's charts and segment table draw, in the shapes they take.

Chart series go to the page as JSON data blocks (``charts.js`` draws them with uPlot);
the same points fill the table beside each chart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from hpe_core.measure.impact import DayPoint
from hpe_core.results import Comparison, Summary
from hpe_core.store.vocabulary import Variant
from web.dashboard.timeline import Annotation

#: The segment table shows the largest segment x channel cells (the CSV has them all).
MAX_SEGMENT_ROWS = 30


@dataclasses.dataclass(frozen=True)
class SegmentRow:
    segment: str
    channel: str
    comparison: Comparison


def lift_series(points: Sequence[DayPoint], marks: Sequence[Annotation]) -> dict:
    return {
        "dates": [p.date.isoformat() for p in points],
        "lift": [p.cumulative_lift.estimate for p in points],
        "low": [p.cumulative_lift.ci_low for p in points],
        "high": [p.cumulative_lift.ci_high for p in points],
        "annotations": [m.as_json() for m in marks],
    }


def daily_series(points: Sequence[DayPoint], marks: Sequence[Annotation]) -> dict:
    return {
        "dates": [p.date.isoformat() for p in points],
        "treatment": [p.rate[Variant.TREATMENT] for p in points],
        "holdout": [p.rate[Variant.HOLDOUT] for p in points],
        "annotations": [m.as_json() for m in marks],
    }


def segment_rows(summary: Summary) -> list[SegmentRow]:
    rows = [
        SegmentRow(segment, channel, comparison)
        for segment, by_channel in summary.segments.items()
        for channel, comparison in by_channel.items()
    ]
    rows.sort(key=lambda r: -(r.comparison.decisions.treatment + r.comparison.decisions.holdout))
    return rows[:MAX_SEGMENT_ROWS]

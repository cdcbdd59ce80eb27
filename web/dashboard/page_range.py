"""The date range of a results page: in the URL (``?from=&to=``), so a link shares it.

Without one, the range is the metrics API's default (the last 30 days through today), so
the page and ``GET /{id}/metrics`` show the same numbers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

#: The picker's shortcuts: label -> days through today.
PRESETS = (("7 days", 7), ("30 days", 30), ("90 days", 90))


@dataclasses.dataclass(frozen=True)
class PageRange:
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    @classmethod
    def from_request(cls, args: Mapping[str, str]) -> PageRange:
        """The range in the query string; a date that does not parse is left out."""
        return cls(_date(args.get("from")), _date(args.get("to")))

    def query(self) -> dict[str, str]:
        """Query arguments that keep this range on the next link."""
        found = {}
        if self.date_from:
            found["from"] = self.date_from.isoformat()
        if self.date_to:
            found["to"] = self.date_to.isoformat()
        return found


def preset(days: int, today: dt.date) -> dict[str, str]:
    return {"from": (today - dt.timedelta(days=days - 1)).isoformat(), "to": today.isoformat()}


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None

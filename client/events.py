"""Server-Sent Events as the API sends them: `event:`, optional `id:`, one JSON `data:` line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator


def parse_events(lines: Iterable[str]) -> Iterator[tuple[str, dict, str | None]]:
    """(name, data, id) per event; `id` is the event's own, or None when it has none."""
    name, event_id = None, None
    for line in lines:
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("id:"):
            event_id = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and name:
            yield name, json.loads(line.split(":", 1)[1]), event_id
            event_id = None

"""What the driver holds of a run while it goes: every program record and every event, copied
from the run's Redis streams as they grow, so the run directory can be written even when Redis
is gone (a run that fails writes what happened up to its failure, never less)."""

from __future__ import annotations

import json

from swarmlab.core import CoordinatorUnavailable
from swarmlab.records import Event, ProgramRecord

from ._coordinator import Coordinator

BATCH = 5000


class Mirror:
    """Program records (latest version of each) and events (deduplicated), as far as read."""

    def __init__(self, coord: Coordinator) -> None:
        self.coord = coord
        self.programs: dict[str, ProgramRecord] = {}
        self.events: list[Event] = []
        self._seen: set[tuple[str, int, str, str]] = set()
        self._last_event = "-"
        self._last_record = "-"

    async def catch_up(self, most: int = 20) -> None:
        """Read what the streams gained since the last call (up to `most` batches each)."""
        for _ in range(most):
            rows = await self.coord.records(self._last_record, BATCH)
            for rid, text in rows:
                record = ProgramRecord.from_json(text)
                self.programs[record.id] = record
                self._last_record = rid
            if len(rows) < BATCH:
                break
        for _ in range(most):
            batch = await self.coord.events(self._last_event, BATCH)
            for rid, event in batch:
                self._add(event)
                self._last_event = rid
            if len(batch) < BATCH:
                break

    async def try_catch_up(self) -> bool:
        """Catch up unless Redis is gone; False when it is."""
        try:
            await self.catch_up()
        except CoordinatorUnavailable:
            return False
        return True

    def _add(self, event: Event) -> None:
        # A call made again after a runner's loss is recorded once.
        if event.seq is not None:
            key = (event.program, event.seq, event.kind, json.dumps(event.detail, sort_keys=True))
            if key in self._seen:
                return
            self._seen.add(key)
        self.events.append(event)

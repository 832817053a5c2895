"""What the driver holds of a run while it goes: every program record and every event, copied
from the run's Redis streams as they grow, so the run directory can be written even when Redis
is gone (a run that fails writes what happened up to its failure, never less).

`follow` reads the streams with a blocking XREAD, so the copy trails Redis by milliseconds;
`catch_up` reads whatever is left (at the end of a run). Both may run at once: an entry is taken
only if its stream id is past the last one taken, so nothing is copied twice."""

from __future__ import annotations

import asyncio
import json

from swarmlab.core import CoordinatorUnavailable
from swarmlab.records import Event, ProgramRecord

from ._coordinator import Coordinator
from ._stored import stored_record

BATCH = 5000
BATCH_S = 0.05


class Mirror:
    """Program records (latest version of each) and events (deduplicated), as far as read."""

    def __init__(self, coord: Coordinator) -> None:
        self.coord = coord
        self.programs: dict[str, ProgramRecord] = {}
        self.events: list[Event] = []
        self._seen: set[tuple[str, int, str, str]] = set()
        self._last_event = "-"
        self._last_record = "-"
        self._following = False

    async def catch_up(self, most: int = 20) -> None:
        """Read what the streams gained since the last call (up to `most` batches each)."""
        for _ in range(most):
            rows = await self.coord.records(self._last_record, BATCH)
            self._take_records(rows)
            if len(rows) < BATCH:
                break
        for _ in range(most):
            batch = await self.coord.events(self._last_event, BATCH)
            self._take_events(batch)
            if len(batch) < BATCH:
                break

    async def try_catch_up(self) -> bool:
        """Catch up unless Redis is gone; False when it is."""
        try:
            await self.catch_up()
        except CoordinatorUnavailable:
            return False
        return True

    async def follow(self, block_ms: int = 250) -> None:
        """Copy both streams as they grow, until `stop_following` or Redis is gone.

        Never cancelled: a blocking read cancelled halfway can leave the client waiting forever,
        so the loop is told to stop and ends within `block_ms`.
        """
        while self._following:
            try:
                records, events = await self.coord.read_streams(
                    self._last_record, self._last_event, block_ms, BATCH
                )
            except CoordinatorUnavailable:
                return
            self._take_records(records)
            self._take_events(events)
            await asyncio.sleep(BATCH_S)  # read in batches, not once per event

    def start_following(self) -> asyncio.Task[None]:
        """Start `follow` as a task (stopped by `stop_following`, then awaited)."""
        self._following = True
        return asyncio.create_task(self.follow())

    def stop_following(self) -> None:
        self._following = False

    def _take_records(self, rows: list[tuple[str, str]]) -> None:
        for rid, text in rows:
            if _after(rid, self._last_record):
                record = stored_record(text)
                self.programs[record.id] = record
                self._last_record = rid

    def _take_events(self, rows: list[tuple[str, Event]]) -> None:
        for rid, event in rows:
            if _after(rid, self._last_event):
                self._add(event)
                self._last_event = rid

    def _add(self, event: Event) -> None:
        # A call made again after a runner's loss is recorded once.
        if event.seq is not None:
            key = (event.program, event.seq, event.kind, json.dumps(event.detail, sort_keys=True))
            if key in self._seen:
                return
            self._seen.add(key)
        self.events.append(event)


def _after(rid: str, last: str) -> bool:
    """Whether stream id `rid` comes after `last` ('-': before every id)."""
    if last == "-":
        return True
    ms, _, seq = rid.partition("-")
    last_ms, _, last_seq = last.partition("-")
    return (int(ms), int(seq or 0)) > (int(last_ms), int(last_seq or 0))

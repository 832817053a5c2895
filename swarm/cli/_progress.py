"""Live progress of a run: bars in an interactive terminal, plain lines elsewhere.

What a run reports (its id, the model, why it ended, a server's log line) may carry text a
program or a model wrote: it is shown through `terminal_text` and, in the live display, as rich
`Text` (never parsed as markup), so `[/]` is shown as written and escape sequences are dropped.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from swarmlab.records import RunResult
from swarmlab.runtime import BAR_CAPS, Snapshot
from swarmlab.spec import ExperimentSpec

from ._text import terminal_text

PLAIN_EVERY_S = 5.0


class Progress:
    """Plain progress on stderr; `for_terminal()` picks the live display on a TTY."""

    def __init__(self, stream: Any = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self._last = 0.0

    @staticmethod
    def for_terminal(quiet: bool = False) -> Progress:
        if not quiet and sys.stderr.isatty():
            return LiveProgress()
        return Progress(quiet=quiet)

    def note(self, text: str) -> None:
        if not self.quiet:
            print(f"swarmlab: {terminal_text(text)}", file=self.stream, flush=True)

    def start(self, run_id: str, spec: ExperimentSpec, out: Path) -> None:
        self.note(f"run {run_id} started ({spec.model}, writing to {out})")

    def update(self, snap: Snapshot) -> None:
        now = time.monotonic()
        if not self.quiet and now - self._last >= PLAIN_EVERY_S:
            self._last = now
            print(terminal_text(snap.line()), file=self.stream, flush=True)

    def finish(self, result: RunResult) -> None:
        s = result.summary()
        if s.status == "failed":
            return  # the command line says why, in one line
        self.note(
            f"run {result.run_id} {s.status} ({s.ended_because}) "
            f"after {s.duration_s:.1f} s"
            f"{'' if s.startup_s is None else f' ({s.startup_s:.1f} s of start-up)'}: "
            f"{s.tree.size} programs, depth {s.tree.max_depth}, "
            f"paperclips {s.outcome.get('paperclips')}; directory {result.out_dir}"
        )
        if s.replay is not None:
            first = s.replay.first_divergence
            self.note(
                f"replay of {s.replay.source}: every input matched ({s.replay.compared} calls)"
                if first is None
                else f"replay of {s.replay.source} diverged first at program {first.program} "
                f"call {first.call}: expected {first.expected}, got {first.got}"
            )
        if s.model.failed_calls:
            self.note(f"{s.model.failed_calls} model calls failed (see events.jsonl)")


class LiveProgress(Progress):
    """Bars for each cap, redrawn in place (rich)."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.live = Live(console=self.console, refresh_per_second=8, transient=False)
        self.title = ""

    def note(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text.assemble(("swarmlab", "bold"), ": ", terminal_text(text)))

    def start(self, run_id: str, spec: ExperimentSpec, out: Path) -> None:
        self.title = terminal_text(f"{run_id} · {spec.model}")
        self.live.start()

    def update(self, snap: Snapshot) -> None:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        c, u = snap.counts, snap.usage
        table = Table(title=Text(self.title), show_header=False, box=None, pad_edge=False)
        table.add_column(width=18)
        table.add_column(width=32)
        table.add_column()
        live = int(u.get("live", {}).get("used", 0))
        table.add_row(
            Text("programs"),
            Text(f"running {live}  done {c.get('completed', 0)}"),
            Text(
                f"crashed {c.get('crashed', 0)}  killed {c.get('killed', 0)}  denied {snap.denied}"
            ),
        )
        table.add_row(
            Text("depth"),
            Text(str(int(u.get("depth", {}).get("used", 0)))),
            Text(f"{snap.elapsed_s:.1f} s"),
        )
        for cap in BAR_CAPS:
            if cap not in u:
                continue
            used, limit = snap.used(cap), max(u[cap]["limit"], 1)
            table.add_row(
                Text(cap),
                ProgressBar(total=limit, completed=min(used, limit), width=30),
                Text(f"{int(used)}/{int(limit)}  denied {int(u[cap]['denied'])}"),
            )
        self.live.update(table)

    def finish(self, result: RunResult) -> None:
        self.live.stop()
        super().finish(result)

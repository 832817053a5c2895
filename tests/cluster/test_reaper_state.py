"""The watchdog's state file is read back as any file is: hostile. Whatever it holds, the
watchdog signals no process id below 2 (`kill(-1)` reaches every process the user owns), no
group below 2, matches no command line but the embedded Ray's folder, and runs nothing but the
lab's own recovery of a run named by a valid id (the file once named commands to run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.cluster import _reaper

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**40) | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "pids": st.lists(st.integers(-3, 10**6) | JSON, max_size=4),
        "groups": st.lists(st.integers(-3, 10**6) | JSON, max_size=4),
        "markers": st.lists(
            st.sampled_from(["", "/", "python", "/tmp", "/r/.ray", "/tmp/swl-0123456789"]) | JSON,
            max_size=4,
        ),
        "runs": st.lists(
            st.lists(st.sampled_from(["run-1", "", "../x", "a b", "-rf", "s=1"]) | JSON, max_size=3)
            | JSON,
            max_size=3,
        ),
        "before": st.lists(st.lists(st.text(max_size=10), max_size=3), max_size=2),
        "below": st.lists(st.sampled_from(["", "cells", "/r/cells"]) | JSON, max_size=3),
    },
)


@settings(max_examples=400, deadline=None)
@given(FIELDS | JSON)
def test_a_state_file_names_only_what_a_driver_writes(raw: Any) -> None:
    watched = _reaper._checked(raw)
    assert set(watched) <= {"pids", "groups", "markers", "runs", "below"}
    assert all(isinstance(f, str) and f.startswith("/") for f in watched.get("below", []))
    assert all(type(p) is int and p > 1 for p in watched.get("pids", []))
    assert all(type(g) is int and g > 1 for g in watched.get("groups", []))
    for marker in watched.get("markers", []):
        assert marker.endswith("/.ray") or "/swl-" in marker
        assert len(marker) > len("/x/.ray") - 1
    for run_id, sweep_id in watched.get("runs", []):
        assert run_id[0].isalnum()
        assert "/" not in run_id
        assert " " not in run_id
        assert sweep_id == "" or (sweep_id[0].isalnum() and "/" not in sweep_id)


def test_what_a_driver_writes_is_kept(tmp_path: Path) -> None:
    reaper = _reaper.Reaper(tmp_path / ".reaper.json")
    reaper.watch_pid(4242)
    reaper.watch_group(4343)
    reaper.watch_marker(str(tmp_path / "run" / ".ray"))
    reaper.watch_marker("/tmp/swl-0123456789")
    reaper.recover("paperclips-20261207-1200-ab12", None)
    reaper.recover_below(tmp_path / "cells")
    written = json.loads((tmp_path / ".reaper.json").read_text())
    assert _reaper._checked(written) == {
        "pids": [4242],
        "groups": [4343],
        "markers": [str(tmp_path / "run" / ".ray"), "/tmp/swl-0123456789"],
        "runs": [["paperclips-20261207-1200-ab12", ""]],
        "below": [str((tmp_path / "cells").resolve())],
    }

"""The live-run registry is read back as hostile, and a run id names a file in it, never a path:
the watchdog's recovery and the registry's clean-up are given ids from state files anyone may
write. Before, `unregister_run("../x")` deleted x.json beside the registry, and the recovery
read whatever file its id named."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlab.runtime._live import entry_of, register_run, registry_dir, unregister_run
from swarmlab.runtime._recover import main as recover_main

NAMES = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["../outside", "../../outside", "/tmp/outside", "a/../../outside", "outside", ".", ""]
)


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SWARMLAB_STATE_DIR", str(tmp_path / "state"))
    registry_dir().mkdir(parents=True)
    return tmp_path


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=NAMES)
def test_any_name_reads_and_removes_only_registry_files(registry: Path, name: str) -> None:
    outside = [registry / "outside.json", registry / "state" / "outside.json"]
    for path in outside:
        path.write_text(
            json.dumps(
                {
                    "run_id": "outside",
                    "redis_url": "redis://x:1",
                    "out_dir": "/",
                    "pid": os.getpid(),
                }
            )
        )
    entry = entry_of(name)
    assert entry is None or entry.run_id == name
    unregister_run(name)
    assert all(path.exists() for path in outside)


def test_a_registered_run_is_found_by_its_id_only(registry: Path) -> None:
    register_run("r-1", "redis://127.0.0.1:1/0", registry / "runs" / "r-1")
    entry = entry_of("r-1")
    assert entry is not None
    assert (entry.run_id, entry.pid) == ("r-1", os.getpid())
    (registry_dir() / "r-2.json").write_text((registry_dir() / "r-1.json").read_text())
    assert entry_of("r-2") is None  # a file named for another run is not its entry
    (registry_dir() / "r-3.json").write_text('{"run_id": "r-3", "redis_url": "file:///etc"}')
    assert entry_of("r-3") is None
    unregister_run("r-1")
    assert entry_of("r-1") is None


@pytest.mark.parametrize("run_id", ["../outside", "r-none"])
def test_the_recovery_refuses_an_id_with_no_entry_in_one_line(
    registry: Path, run_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (registry / "outside.json").write_text("{}")
    assert recover_main([run_id]) == 1
    said = capsys.readouterr().err
    assert said.count("\n") == 1
    assert "no live-run entry" in said
    assert (registry / "outside.json").exists()


def test_listing_leaves_a_dead_driver_s_entry_to_its_watchdog(registry: Path) -> None:
    import subprocess

    from swarmlab.runtime._live import FORGOTTEN_AFTER_S, registered_runs

    dead = subprocess.Popen(["true"])
    dead.wait()  # a driver that died: its watchdog has yet to recover the run
    path = registry_dir() / "lk6.json"
    entry = {
        "run_id": "lk6",
        "redis_url": "redis://127.0.0.1:1/0",
        "out_dir": "/x",
        "pid": dead.pid,
    }
    path.write_text(json.dumps(entry))
    assert registered_runs() == []  # `swarmlab status` lists live drivers only
    found = entry_of("lk6")  # and the recovery still finds what it needs
    assert found is not None
    assert found.pid == dead.pid
    old = path.stat().st_mtime - FORGOTTEN_AFTER_S - 60
    os.utime(path, (old, old))  # a recovery that never came: the entry is forgotten
    assert registered_runs() == []
    assert not path.exists()

"""The lab process's socket takes hostile bytes: whatever arrives, one frame answers, and only a
valid `run` request runs (in process, on a socket pair: no Ray, no warm instance)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.cli._main import main
from swarmlab.cli._warm_server import LabServer, _Going, _watch_client, code_fingerprint

CODE = code_fingerprint()


def _answer(server: LabServer, data: bytes) -> list[dict[str, object]]:
    """What the lab process answers `data`, from a client that reads every frame until the
    lab process closes, then closes too (as `swarmlab run` does)."""
    ours, theirs = socket.socketpair()
    frames: list[dict[str, object]] = []

    def client() -> None:
        with theirs:
            _send_all(theirs, data)
            theirs.settimeout(10)
            frames.extend(json.loads(line) for line in theirs.makefile("rb") if line.strip())

    reader = threading.Thread(target=client, daemon=True)
    reader.start()
    with ours:
        server._handle(ours)
    reader.join(10)
    return frames


def _send_all(conn: socket.socket, data: bytes) -> None:
    try:
        conn.sendall(data)
        if not data.endswith(b"\n"):  # a request cut short: the client stops sending
            conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _server(tmp_path: Path, ran: list[list[str]]) -> LabServer:
    def command(argv: list[str]) -> int:
        ran.append(argv)
        print("ran")
        return 7

    server = LabServer(tmp_path, command)
    server.code = CODE
    server.interrupt = lambda: ran.append(["interrupted"])
    return server


requests = st.fixed_dictionaries(
    {},
    optional={
        "argv": st.lists(st.text(max_size=20), max_size=5),
        "cwd": st.text(max_size=20),
        "env": st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3),
        "code": st.text(max_size=40),
        "started_boot_s": st.floats(allow_nan=True, allow_infinity=True),
        "other": st.integers(),
    },
)


@settings(max_examples=60, deadline=None)
@given(data=st.one_of(st.binary(max_size=2000), requests.map(lambda r: json.dumps(r).encode())))
def test_any_bytes_get_one_frame_and_run_nothing_unless_a_valid_run(
    tmp_path_factory: object, data: bytes
) -> None:
    tmp_path = Path(tmp_path_factory.mktemp("lab"))  # type: ignore[attr-defined]
    ran: list[list[str]] = []
    frames = _answer(_server(tmp_path, ran), data + b"\n")
    if ran:  # only a request that is valid in every field runs, and it ran once
        assert len(ran) == 1
        assert ran[0][0] == "run"
        assert frames[0] == {"accepted": True}
        assert frames[-1] == {"exit": 7}
    else:
        assert len(frames) == 1, frames
        assert set(frames[0]) <= {"error", "stale"}, frames


def test_a_valid_request_runs_with_its_directory_and_its_variables(tmp_path: Path) -> None:
    ran: list[list[str]] = []
    request = {
        "argv": ["run", "paperclips"],
        "cwd": str(tmp_path),
        "env": {"SWARMLAB_MODEL_URL": "http://x:1/v1", "PATH": "/nowhere"},
        "code": CODE,
        "started_boot_s": 1.0,
    }
    frames = _answer(_server(tmp_path, ran), json.dumps(request).encode() + b"\n")
    assert ran == [["run", "paperclips"]]
    assert frames == [{"accepted": True}, {"o": "ran"}, {"o": "\n"}, {"exit": 7}]


def test_a_request_too_long_or_too_slow_is_refused(tmp_path: Path) -> None:
    ran: list[list[str]] = []
    server = _server(tmp_path, ran)
    assert "error" in _answer(server, b"x" * 300_000)[0]
    assert "error" in _answer(server, b'{"argv": ["run"]')[0]  # no newline: ends unfinished
    assert ran == []


# --- whatever the command does, an exit frame ends the run and the lab process serves on ---


def _request(cwd: Path, argv: list[str], env: dict[str, str] | None = None) -> bytes:
    request = {"argv": argv, "cwd": str(cwd), "env": env or {}, "code": CODE, "started_boot_s": 1}
    return json.dumps(request).encode() + b"\n"


def _raising(exc: BaseException) -> LabServer:
    def command(argv: list[str]) -> int:
        raise exc

    return LabServer(Path("/nonexistent"), command)


def test_argparse_exits_end_the_run_with_its_code_not_the_lab_process(tmp_path: Path) -> None:
    server = LabServer(tmp_path, main)
    server.code = CODE
    frames = _answer(server, _request(tmp_path, ["run", "--bogus"]))
    assert frames[0] == {"accepted": True}
    assert frames[-1] == {"exit": 2}
    assert any("swarmlab" in str(frame.get("e", "")) for frame in frames)  # argparse said why
    frames = _answer(server, _request(tmp_path, ["run", "--help"]))
    assert frames[-1] == {"exit": 0}
    assert any("usage" in str(frame.get("o", "")) for frame in frames)


exits = st.one_of(
    st.none(), st.integers(-(2**40), 2**40), st.text(max_size=30), st.sampled_from([[], {}, 1.5])
)


@settings(max_examples=20, deadline=None)
@given(code=exits)
def test_any_system_exit_of_the_command_gives_one_exit_frame(
    tmp_path_factory: object, code: object
) -> None:
    tmp_path = Path(tmp_path_factory.mktemp("lab"))  # type: ignore[attr-defined]
    server = _raising(SystemExit(code))
    server.code = CODE
    frames = _answer(server, _request(tmp_path, ["run", "paperclips"]))
    assert frames[0] == {"accepted": True}
    assert isinstance(frames[-1].get("exit"), int)
    assert 0 <= frames[-1]["exit"] <= 255  # type: ignore[operator]
    assert sum("exit" in frame for frame in frames) == 1


def test_serve_one_survives_whatever_a_request_raises(tmp_path: Path) -> None:
    for exc in (SystemExit(2), KeyboardInterrupt(), RuntimeError("x"), ValueError("y")):
        server = _raising(exc)
        server.code = CODE
        server.busy.set()
        ours, theirs = socket.socketpair()
        with theirs:
            theirs.sendall(_request(tmp_path, ["run", "paperclips"]))
            server.serve_one(ours)  # returns: the lab process serves on
        assert not server.busy.is_set()


def test_a_deleted_working_directory_loses_no_run_and_sends_no_interrupt(
    tmp_path: Path, monkeypatch: object
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)  # type: ignore[attr-defined]
    gone.rmdir()  # the lab process's own directory is deleted under it
    ran: list[list[str]] = []
    server = _server(tmp_path, ran)
    frames = _answer(server, _request(tmp_path, ["run", "paperclips"]))
    assert frames[0] == {"accepted": True}
    assert frames[-1] == {"exit": 7}
    assert Path.cwd() == tmp_path  # back in the state dir, never in a deleted one
    time.sleep(1.0)  # the watch sees the client go: the run has ended, so no interrupt
    assert ran == [["run", "paperclips"]]


def test_the_run_s_directory_gone_when_it_starts_ends_that_run_in_one_line(
    tmp_path: Path,
) -> None:
    ran: list[list[str]] = []
    server = _server(tmp_path, ran)
    os_chdir = os.chdir

    def chdir(path: object) -> None:
        if path == str(tmp_path / "run"):
            raise FileNotFoundError(2, "No such file or directory")
        os_chdir(path)  # type: ignore[arg-type]

    (tmp_path / "run").mkdir()
    with mock.patch.object(os, "chdir", chdir):
        frames = _answer(server, _request(tmp_path / "run", ["run", "paperclips"]))
    assert frames[0] == {"accepted": True}
    assert frames[-1] == {"exit": 1}
    assert [f for f in frames if "e" in f]
    assert ran == []


def test_no_interrupt_reaches_the_lab_process_once_the_run_has_ended() -> None:
    sent: list[str] = []
    run = _Going(lambda: sent.append("SIGINT"))
    ours, theirs = socket.socketpair()
    watch = threading.Thread(target=_watch_client, args=(ours, run))
    watch.start()
    run.end()
    theirs.close()  # the client goes after the run ended
    watch.join(5)
    assert sent == []
    run = _Going(lambda: sent.append("SIGINT"))
    run.interrupt()
    run.interrupt()  # the client asked twice: one signal, while the run was going
    run.end()
    run.interrupt()
    assert sent == ["SIGINT"]


def test_an_env_the_process_cannot_set_is_refused_in_one_frame(tmp_path: Path) -> None:
    ran: list[list[str]] = []
    server = _server(tmp_path, ran)
    for env in (
        {"SWARMLAB_A=B": "x"},
        {"SWARMLAB_A": "x\0y"},
        {"": "x"},
        {"SWARMLAB_A": "x" * 40_000},
    ):
        frames = _answer(server, _request(tmp_path, ["run", "paperclips"], env))
        assert len(frames) == 1
        assert "error" in frames[0]
    assert ran == []


fields = st.text(alphabet=st.sampled_from("SWARMLAB_OTEL=\0\n é"), max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    env=st.dictionaries(fields.map(lambda k: "SWARMLAB_" + k), fields, max_size=3),
    argv=st.lists(fields, max_size=3),
)
def test_an_accepted_request_always_ends_in_one_exit_frame(
    tmp_path_factory: object, env: dict[str, str], argv: list[str]
) -> None:
    tmp_path = Path(tmp_path_factory.mktemp("lab"))  # type: ignore[attr-defined]
    ran: list[list[str]] = []
    frames = _answer(_server(tmp_path, ran), _request(tmp_path, ["run", *argv], env))
    if frames[0] == {"accepted": True}:
        assert frames[-1] == {"exit": 7}
        assert sum("exit" in frame for frame in frames) == 1
    else:
        assert len(frames) == 1
        assert "error" in frames[0]


def test_the_lab_process_keeps_one_fleet_whatever_widths_runs_ask(
    tmp_path: Path, monkeypatch: object
) -> None:
    import swarmlab.runtime
    from swarmlab.spec import load_spec

    made: list[object] = []
    killed: list[object] = []

    def runner_fleet(
        ray: object, specs: list[Any], redis_url: str, sets: int
    ) -> list[list[object]]:
        fleet = [object() for _ in range(specs[0].runners)]
        made.extend(fleet)
        return [fleet]

    monkeypatch.setattr(swarmlab.runtime, "runner_fleet", runner_fleet)  # type: ignore[attr-defined]
    server = _server(tmp_path, [])
    server.ray = mock.Mock(kill=killed.append)
    spec = load_spec("paperclips")
    spec = spec.model_copy(update={"caps": spec.caps.model_copy(update={"concurrent": 64})})
    for runners in (6, 7, 6, 6, 3, 7):
        fleet = server.lend(spec.model_copy(update={"runners": runners}))
        assert len(fleet) == runners
        alive = [actor for actor in made if actor not in killed]
        assert alive == fleet  # the previous width's runners ended: one fleet at a time
    assert len(made) == 6 + 7 + 6 + 3 + 7  # a run of the same width as the last borrows it


# --- a client that has its answer finds the lab process free ---


def _frames_until_last(conn: socket.socket) -> list[dict[str, object]]:
    """Frames up to a request's last one (an error, stale or exit), leaving the socket open."""
    frames: list[dict[str, object]] = []
    reader = conn.makefile("rb")
    while not frames or not {"error", "stale", "exit", "busy"} & set(frames[-1]):
        frames.append(json.loads(reader.readline()))
    return frames


@pytest.mark.parametrize("last", ["error", "stale", "exit"])
def test_a_client_that_asks_again_as_soon_as_it_has_its_answer_is_served(
    tmp_path: Path, last: str
) -> None:
    """The next request, sent while the first client still holds its connection, is answered,
    not refused as `busy`: the lab process is free by the time a client sees its last frame."""
    first = {
        "error": b"not json\n",
        "stale": _request(tmp_path, ["run", "paperclips"]).replace(CODE.encode(), b"0" * 32),
        "exit": _request(tmp_path, ["run", "paperclips"]),
    }[last]
    ran: list[list[str]] = []
    server = _server(tmp_path, ran)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "lab.sock"))
    listener.listen(8)
    threading.Thread(target=server._accept, args=(listener,), daemon=True).start()

    def serve_two() -> None:
        for _ in range(2):
            server.serve_one(server.work.get(timeout=30))

    worker = threading.Thread(target=serve_two, daemon=True)
    worker.start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as one:
            one.settimeout(30)
            one.connect(str(tmp_path / "lab.sock"))
            one.sendall(first)
            assert last in _frames_until_last(one)[-1]
            second = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            second.settimeout(30)
            second.connect(str(tmp_path / "lab.sock"))
            second.sendall(b"not json\n")
        with second:  # the first client has closed now
            answer = _frames_until_last(second)
        worker.join(30)
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept under way, which then ends
        listener.close()
    assert len(answer) == 1, answer
    assert "error" in answer[0], answer
    assert ran == ([["run", "paperclips"]] if last == "exit" else [])


# --- Ctrl-C at the client, wherever it lands, is sent on once and the run's end awaited ---


@pytest.mark.parametrize("where", ["reading", "showing"])
def test_ctrl_c_anywhere_in_the_client_is_sent_on_and_the_run_s_exit_awaited(
    where: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C while the client reads a frame or while it prints one: the lab process is told
    once, and the command ends with the run's own exit code (it ended at once, with 1, when the
    interrupt landed while a frame was printed)."""
    from swarmlab.cli import _warm_client

    ours, theirs = socket.socketpair()
    pressed = {"done": False}
    name = "_read_frame" if where == "reading" else "_shown"
    real = getattr(_warm_client, name)

    def pressing(*args: Any) -> Any:
        result = real(*args)
        frame = result if where == "reading" else args[0]
        if not pressed["done"] and isinstance(frame, dict) and frame.get("o") == "one":
            pressed["done"] = True
            raise KeyboardInterrupt  # as the run's output is handled
        return result

    monkeypatch.setattr(_warm_client, name, pressing)
    frames = [{"accepted": True}, {"o": "one"}, {"o": "two"}, {"exit": 3}]
    with theirs:
        theirs.sendall(b"".join(json.dumps(f).encode() + b"\n" for f in frames))
        theirs.shutdown(socket.SHUT_WR)
        with ours:
            code = _warm_client._follow(ours)
        told = theirs.makefile("rb").read().splitlines()
    assert code == 3
    assert told == [b'{"interrupt": true}']
    assert "two" in capsys.readouterr().out

"""A run directory as an archive and back (`swarmlab fetch`): whole when it is honest, refused
when it is not, and never a byte written outside the target, whatever the archive says."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import tarfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlab.cli._fetch import check_fetch_out
from swarmlab.cluster import (
    ClusterError,
    decode_archive,
    encode_archive,
    pack_run_dir,
    unpack_run_archive,
)
from swarmlab.core import SpecError

RUN = "exp-1"
LIMIT = 1 << 20


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every entry below `root` (None for a directory), symlinks as their own entries."""
    found: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = b"->" + os.readlink(path).encode()
            elif path.is_dir():
                found[rel] = None
            elif path.is_file():
                found[rel] = path.read_bytes()
            else:
                found[rel] = b"special"  # a FIFO: listed, never read
    return found


def _archive(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _special(name: str, kind: bytes, target: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def test_a_run_directory_comes_back_whole(tmp_path: Path) -> None:
    run = tmp_path / "cluster" / RUN
    (run / "sub").mkdir(parents=True)
    (run / "summary.json").write_text('{"run_id": "exp-1"}\n')
    (run / "events.jsonl").write_bytes(b"\x00\xff binary too\n" * 1000)
    (run / "sub" / "report.html").write_text("<html>\u2028</html>")
    (tmp_path / "secret").write_text("not the run's")
    (run / "link").symlink_to(tmp_path / "secret")  # never followed, never sent
    os.mkfifo(run / "fifo")  # never read (it would block)
    text = "swarmlab: packing\n" + encode_archive(pack_run_dir(run, RUN, LIMIT)) + "done\n"
    got = unpack_run_archive(decode_archive(text, LIMIT), RUN, tmp_path / "home", LIMIT)
    expected = {k: v for k, v in _tree(run).items() if k not in ("link", "fifo")}
    assert _tree(tmp_path / "home") == expected
    assert (got.files, got.bytes) == (3, sum(len(v) for v in expected.values() if v))
    # Fetching again refreshes the copy in place.
    (run / "summary.json").write_text('{"run_id": "exp-1", "again": true}\n')
    again = decode_archive(encode_archive(pack_run_dir(run, RUN, LIMIT)), LIMIT)
    unpack_run_archive(again, RUN, tmp_path / "home", LIMIT)
    assert (tmp_path / "home" / "summary.json").read_text().endswith("true}\n")


def test_a_run_directory_larger_than_the_limit_is_refused_not_cut(tmp_path: Path) -> None:
    run = tmp_path / RUN
    run.mkdir()
    (run / "traces.jsonl").write_bytes(os.urandom(4096))
    with pytest.raises(ClusterError, match="more than 4095 bytes"):
        pack_run_dir(run, RUN, 4095)
    data = pack_run_dir(run, RUN, 4096)
    with pytest.raises(SpecError, match="more than 4095 bytes"):
        unpack_run_archive(data, RUN, tmp_path / "home", 4095)
    assert not (tmp_path / "home" / "traces.jsonl").exists()


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([_file(f"{RUN}/../escape")], "outside the run directory"),
        ([_file("/etc/escape")], "outside the run directory"),
        ([_file("other-run/summary.json")], "outside the run directory"),
        ([_file(f"{RUN}//x")], "outside the run directory"),
        ([_special(f"{RUN}/link", tarfile.SYMTYPE, "/etc/passwd")], "not a plain file"),
        ([_special(f"{RUN}/hard", tarfile.LNKTYPE, "/etc/passwd")], "not a plain file"),
        ([_special(f"{RUN}/dev", tarfile.CHRTYPE)], "not a plain file"),
        ([_special(f"{RUN}/fifo", tarfile.FIFOTYPE)], "not a plain file"),
        ([_file(f"{RUN}/a"), _file(f"{RUN}/a")], "twice"),
        ([_file(RUN)], "not a plain file"),
        ([_file(f"{RUN}/a"), _file(f"{RUN}/a/b")], "as a file and a folder"),
        ([_file(f"{RUN}/a/b/c"), _file(f"{RUN}/a/b")], "as a file and a folder"),
    ],
)
def test_an_archive_that_could_leave_the_target_writes_nothing(
    tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], why: str
) -> None:
    home = tmp_path / "home"
    with pytest.raises(SpecError, match=why):
        unpack_run_archive(_archive(_file(f"{RUN}/first"), *members), RUN, home, LIMIT)
    assert not (home / "first").exists()  # checked whole before the first write
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"] or not home.exists()


def test_a_symlink_already_in_the_target_is_not_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    (home / "sub").symlink_to(outside)
    (home / "summary.json").symlink_to(outside / "summary.json")
    with pytest.raises(SpecError, match="not a directory"):
        unpack_run_archive(_archive(_file(f"{RUN}/sub/x")), RUN, home, LIMIT)
    unpack_run_archive(_archive(_file(f"{RUN}/summary.json", b"{}")), RUN, home, LIMIT)
    assert list(outside.iterdir()) == []
    assert not (home / "summary.json").is_symlink()


def test_a_gzip_bomb_stops_at_the_limit(tmp_path: Path) -> None:
    bomb = gzip.compress(b"\x00" * (64 << 20))  # ~64 KiB that unpack to 64 MiB
    with pytest.raises(ClusterError, match="unpacks to more than"):
        unpack_run_archive(bomb, RUN, tmp_path / "home", LIMIT)
    with pytest.raises(ClusterError, match="not gzip"):
        unpack_run_archive(b"plain bytes", RUN, tmp_path / "home", LIMIT)


def test_a_log_whose_archive_is_not_the_one_announced_is_refused() -> None:
    text = encode_archive(b"some archive bytes")
    assert decode_archive(text, LIMIT) == b"some archive bytes"
    lines = text.split("\n")
    for bad, why in [
        (text.replace(lines[1], "c29tZSBvdGhlciBieXRlcw=="), "length and digest"),
        ("\n".join(lines[:-2]) + "\n", "cut short"),
        (text + text, "2 archives"),
        ("no archive here\n", "0 archives"),
        (text.replace(lines[1], lines[1][:-4] + "!!!="), "not base64"),
    ]:
        with pytest.raises(ClusterError, match=why):
            decode_archive(bad, LIMIT)
    with pytest.raises(ClusterError, match="more than the limit"):
        decode_archive(text, 5)


_NAME_PARTS = st.sampled_from([RUN, "..", ".", "", "a", "b.json", "/", "\\", "\u2028", "x\x00"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.lists(_NAME_PARTS, min_size=1, max_size=5), min_size=1, max_size=5))
def test_whatever_the_names_nothing_lands_outside_the_target(
    tmp_path_factory: pytest.TempPathFactory, names: list[list[str]]
) -> None:
    base = tmp_path_factory.mktemp("unpack")
    home = base / "home"
    members = [_file("/".join(parts)) for parts in names]
    try:
        archive = _archive(*members)
    except (ValueError, UnicodeError):
        return  # tarfile itself cannot write such a name
    with contextlib.suppress(SpecError, ClusterError):
        unpack_run_archive(archive, RUN, home, LIMIT)
    for dirpath, _, filenames in os.walk(base):
        for name in filenames:
            path = Path(dirpath) / name
            assert path.resolve().is_relative_to(home.resolve()), path
            assert not path.is_symlink()


@pytest.mark.parametrize("planted", ["runs", f"runs/{RUN}", f"runs/{RUN}/sub"])
def test_a_link_planted_at_any_directory_the_run_goes_into_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, planted: str
) -> None:
    # Every directory fetch writes into, the run directory itself and `runs` above it
    # included: a link at any of them is refused, nothing written through it.
    victim = tmp_path / "victim"
    victim.mkdir()
    plant = tmp_path / "plant"
    (plant / planted).parent.mkdir(parents=True)
    (plant / planted).symlink_to(victim)
    monkeypatch.chdir(plant)
    archive = _archive(_file(f"{RUN}/summary.json", b"{}"), _file(f"{RUN}/sub/x"))
    outs = [Path("runs") / RUN]
    if planted != "runs":  # above an absolute --out, the directories that exist are the user's
        outs.append(plant / "runs" / RUN)
    for out in outs:
        with pytest.raises(SpecError, match="not a directory"):
            unpack_run_archive(archive, RUN, out, LIMIT)
        assert list(victim.iterdir()) == []
    if planted.count("/") < 2:  # checked up front too, before a job is submitted
        with pytest.raises(SpecError, match="not a directory"):
            check_fetch_out(None, RUN)


def test_an_absolute_out_follows_the_users_own_links_above_it(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "study").symlink_to(tmp_path / "real")
    archive = _archive(_file(f"{RUN}/summary.json", b"{}"))
    unpack_run_archive(archive, RUN, tmp_path / "study" / "new" / RUN, LIMIT)
    assert (tmp_path / "real" / "new" / RUN / "summary.json").read_bytes() == b"{}"


def test_a_name_longer_than_the_file_system_takes_is_refused_before_any_write(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    for name in ["a" * 300, "b/" + "\u20ac" * 86]:
        archive = _archive(_file(f"{RUN}/summary.json", b"{}"), _file(f"{RUN}/{name}"))
        with pytest.raises(SpecError, match="longer than a file system takes"):
            unpack_run_archive(archive, RUN, home, LIMIT)
        assert not home.exists()


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    letter=st.sampled_from(["a", "\u00e9", "\u20ac", "\U0001f600"]),
    count=st.integers(40, 300),
    depth=st.integers(0, 2),
)
def test_whatever_a_names_length_it_is_written_whole_or_refused_before_any_write(
    tmp_path_factory: pytest.TempPathFactory, letter: str, count: int, depth: int
) -> None:
    # Near the file system's bounds, in bytes (a letter of 1 to 4): never a file system error
    # after the first file is written.
    home = tmp_path_factory.mktemp("unpack") / "home"
    name = "/".join([letter * count] * (depth + 1))
    archive = _archive(_file(f"{RUN}/summary.json", b"{}"), _file(f"{RUN}/{name}", b"1"))
    if len(letter.encode()) * count > 255:
        with pytest.raises(SpecError, match="longer than a file system takes"):
            unpack_run_archive(archive, RUN, home, LIMIT)
        assert not home.exists()
    else:
        unpack_run_archive(archive, RUN, home, LIMIT)
        assert (home / name).read_bytes() == b"1"


def _with_pax(body: bytes, kind: bytes = tarfile.XHDTYPE) -> bytes:
    """A gzip'd tar: one pax header of `body`, then the run's summary.json."""
    pax = tarfile.TarInfo("pax")
    pax.type, pax.size = kind, len(body)
    member = tarfile.TarInfo(f"{RUN}/summary.json")
    member.size = 2
    raw = pax.tobuf(tarfile.USTAR_FORMAT) + body + bytes(-len(body) % 512)
    raw += member.tobuf(tarfile.USTAR_FORMAT) + b"{}" + bytes(510 + 1024)
    return gzip.compress(raw)


def test_a_pax_header_tarfile_would_parse_for_hours_is_refused_at_once(tmp_path: Path) -> None:
    # CVE-2024-6232: 2 MB of "1" in one pax header, ~3 KB gzip'd; tarfile took hours.
    archive = _with_pax(b"1" * 2_000_000)
    started = time.perf_counter()
    with pytest.raises(SpecError, match="pax header"):
        unpack_run_archive(archive, RUN, tmp_path / "home", 4 << 20)
    assert time.perf_counter() - started < 0.5
    assert not (tmp_path / "home").exists()
    for kind in (tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME):
        with pytest.raises(SpecError, match="header at byte 0"):
            unpack_run_archive(_with_pax(b"x" * 10, kind), RUN, tmp_path / "home", LIMIT)


def test_the_labs_longest_names_still_come_back(tmp_path: Path) -> None:
    run = tmp_path / "cluster" / RUN
    deep = run.joinpath(*["\u00e9" * 120] * 4)
    deep.mkdir(parents=True)
    (deep / "summary.json").write_text("{}")
    data = pack_run_dir(run, RUN, LIMIT)
    unpack_run_archive(data, RUN, tmp_path / "home", LIMIT)
    assert _tree(tmp_path / "home") == _tree(run)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(
        st.tuples(
            st.sampled_from(["path", "size", "mtime", "comment", "hdrcharset", "GNU.sparse.map"]),
            st.text(alphabet="1= \n/a\u00e9", max_size=40),
        ),
        max_size=4,
    ),
    filler=st.binary(max_size=64) | st.just(b"1" * 100_000) | st.just(b"9" * 4000),
)
def test_whatever_a_pax_header_holds_the_archive_unpacks_or_is_refused_at_once(
    tmp_path_factory: pytest.TempPathFactory, records: list[tuple[str, str]], filler: bytes
) -> None:
    body = b""
    for key, value in records:
        text = f" {key}={value}\n".encode()
        length = len(text) + len(str(len(text)))
        length += len(str(length)) - len(str(len(text)))
        body += str(length).encode() + text
    body += filler
    home = tmp_path_factory.mktemp("unpack") / "home"
    started = time.perf_counter()
    with contextlib.suppress(SpecError):
        unpack_run_archive(_with_pax(body), RUN, home, 4 << 20)
    assert time.perf_counter() - started < 0.5
    for dirpath, _, filenames in os.walk(home):
        for name in filenames:
            path = Path(dirpath) / name
            assert path.resolve().is_relative_to(home.resolve()), path

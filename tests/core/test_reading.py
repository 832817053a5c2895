"""The one reader of files the lab did not just write, searched with hostile bytes, and the one
writer, which never follows a symlink.

Every input is either admitted (and then within the bounds: finite numbers, bounded depth,
valid Unicode) or refused with a `SpecError` of one line naming the file and the line: never
another exception, never a hang. A scan of the code base keeps `str.splitlines()` off JSON.
"""

from __future__ import annotations

import ast
import json
import math
import os
import socket
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from swarmlab.core import (
    MAX_INT_DIGITS,
    MAX_JSON_DEPTH,
    SpecError,
    csv_rows,
    json_lines,
    parse_json,
    parse_yaml,
    read_bytes,
    read_text,
    text_lines,
    write_text,
)

REPO = Path(__file__).resolve().parents[2]
FAST = settings(
    max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow], database=None
)

# JSON fragments that broke readers of the lab before: non-finite numbers, deep nesting, huge
# ints, lone surrogates, and the line separators `str.splitlines()` splits on.
HOSTILE_JSON = st.sampled_from(
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e999",
        "9" * 5000,
        '"\\ud800"',
        '"\\udc00x"',
        '"a\u2028b\u2029c\x85d"',
        "[" * 5000 + "]" * 5000,
        '{"a":' * 300 + "1" + "}" * 300,
        "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
    ]
)


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, d = stack.pop()
        deepest = max(deepest, d)
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else []
        )
        stack.extend((c, d + 1) for c in children)
    return deepest


def _admitted(value: Any) -> None:
    """A value the reader let through is within its bounds."""
    assert _depth(value) <= MAX_JSON_DEPTH
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            assert math.isfinite(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            assert len(str(abs(item))) <= MAX_INT_DIGITS
        elif isinstance(item, str):
            item.encode("utf-8")  # no lone surrogate
        elif isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            stack += item


def _one_line(exc: SpecError, where: str) -> None:
    text = str(exc)
    assert "\n" not in text, text
    assert text.startswith(where), text


@FAST
@given(prefix=st.text(max_size=20), hostile=HOSTILE_JSON, suffix=st.text(max_size=20))
@example(prefix='{"t": ', hostile="Infinity", suffix="}")
@example(prefix='{"a": ', hostile='"\\ud800"', suffix="}")
def test_json_is_admitted_within_bounds_or_refused_in_one_line(
    prefix: str, hostile: str, suffix: str
) -> None:
    started = time.monotonic()
    try:
        value = parse_json(prefix + hostile + suffix, "f.jsonl:7")
    except SpecError as exc:
        _one_line(exc, "f.jsonl:7: ")
    else:
        _admitted(value)
    assert time.monotonic() - started < 3.0  # a shared 2-core machine: generous


@FAST
@given(st.binary(max_size=300))
@example(b'{"a": 1}\n\xff\n')
@example(b'{"a": "\xe2\x80\xa8"}\n{"b": 2}\n')
@example(b"\x1c")  # str.strip() drops it: a line of it is not blank, nor JSON
@example(b"\x00")
def test_a_jsonl_file_of_any_bytes_is_read_or_refused_naming_its_line(data: bytes) -> None:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"reading-{os.getpid()}.jsonl"
    path.write_bytes(data)
    try:
        rows = list(json_lines(path))
    except SpecError as exc:
        _one_line(exc, f"{path}:")
    else:
        assert [n for n, _ in rows] == sorted({n for n, _ in rows})
        for _, value in rows:
            _admitted(value)
        # Lines are split on \n only: as many rows as non-blank \n-separated lines.
        expected = [line for line in data.split(b"\n") if line.strip(b" \t\r\n")]
        assert len(rows) == len(expected)
    finally:
        path.unlink(missing_ok=True)


def test_a_line_separator_inside_a_json_string_stays_in_its_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    rows = [{"msg": "one\u2028two\u2029three\x85four\x0bfive"}, {"msg": "next"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    assert [value for _, value in json_lines(path)] == rows


@FAST
@given(st.text(max_size=200))
@example("a: &x [1]\nb: *x\n")
@example("seed: " + "9" * 5000)
@example("[" * 2000)
@example("a:\n" + "".join("  " * i + "- \n" for i in range(1, 300)))
def test_yaml_is_admitted_or_refused_in_one_line(text: str) -> None:
    started = time.monotonic()
    try:
        value = parse_yaml(text, "spec.yaml")
    except SpecError as exc:
        _one_line(exc, "spec.yaml")
    else:
        assert _depth(value) <= MAX_JSON_DEPTH + 1
    assert time.monotonic() - started < 3.0  # a shared 2-core machine: generous


YAML_INTS = st.tuples(
    st.sampled_from(["", "0x", "0o", "0b", "-0x", "+"]),
    st.integers(min_value=1, max_value=6000),
    st.sampled_from(["1", "f", "7", "1_0", "5:"]),
).map(lambda t: f"{t[0]}{t[2] * t[1]}".rstrip(":_"))


@FAST
@given(YAML_INTS)
@example("0x" + "f" * 4000)  # a hex int counted no digits once, then broke its own refusal
@example("0b" + "1" * 300)
@example("1:" * 200 + "1")  # base 60 (YAML 1.1)
def test_a_yaml_int_in_any_spelling_is_within_bounds_or_refused_in_one_line(text: str) -> None:
    started = time.monotonic()
    try:
        value = parse_yaml(f"caps:\n  programs: {text}\n", "spec.yaml")
    except SpecError as exc:
        _one_line(exc, "spec.yaml")
    else:
        _admitted(value)
    assert time.monotonic() - started < 3.0  # a shared 2-core machine: generous


def test_yaml_aliases_are_refused_so_a_small_file_cannot_expand() -> None:
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{b}: &{b} [*{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}]\n"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    )
    with pytest.raises(SpecError, match=r"spec.yaml: line 2: an alias \(\*a\)"):
        parse_yaml(laughs, "spec.yaml")


def _verdict(text: str) -> tuple[str, Any]:
    try:
        return "read", parse_yaml(text, "spec.yaml")
    except SpecError as exc:
        return "refused", str(exc)


# YAML documents near the reader's bounds: nesting around MAX_JSON_DEPTH in flow and block
# style, anchors and aliases, keys written twice, ints of every spelling.
_YAML_PIECES = st.lists(
    st.sampled_from(
        ["[", "]", "{a: ", "}", "- ", "\n", "  ", "&x ", "*x", "1", "0x1f", "k: ", "k: ", ", "]
    ),
    max_size=60,
)
_DEEP = [
    "[" * d + body + "]" * d
    for d in (MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1)
    for body in ("", "1", "[]", "{}")
]


@FAST
@given(st.one_of(_YAML_PIECES.map("".join), st.sampled_from(_DEEP)))
@example("".join(f"{'  ' * i}k:\n" for i in range(MAX_JSON_DEPTH)) + "  " * MAX_JSON_DEPTH + "1\n")
@example("a: &x [1]\nb: *x\n")
def test_yaml_is_judged_the_same_by_libyaml_and_by_pure_python(text: str) -> None:
    # The C parser (used where PyYAML has it) checks aliases and depth on its events; the pure
    # one as it composes. Every document is read to the same value or refused in the same words.
    import yaml

    from swarmlab.core import _reading

    fast = _verdict(text)
    with_c, loader = yaml.__with_libyaml__, _reading._LOADER
    try:
        setattr(yaml, "__with_libyaml__", False)  # noqa: B010 (a Final name to mypy)
        _reading._LOADER = None
        pure = _verdict(text)
    finally:
        setattr(yaml, "__with_libyaml__", with_c)  # noqa: B010
        _reading._LOADER = loader
    if fast[0] == "refused" and pure[0] == "refused" and "not valid YAML" in fast[1]:
        assert "not valid YAML" in pure[1]  # the two parsers word a syntax error differently
    else:
        assert fast == pure


@FAST
@given(st.text(max_size=300))
@example('unit_id,text\nu1,"a\u2028b"\nu2,c\n')
@example('unit_id,text\nu1,"' + "x" * 140_000 + '"\n')
@example('unit_id\n"unclosed\n')
def test_a_csv_table_is_read_or_refused_naming_its_line(text: str) -> None:
    try:
        columns, rows = csv_rows(text, "labels.csv")
    except SpecError as exc:
        _one_line(exc, "labels.csv:")
    else:
        assert all(isinstance(row, dict) for _, row in rows)
        if text.startswith("unit_id,text\nu1,"):
            assert columns == ["unit_id", "text"]


def test_a_csv_cell_keeps_its_line_separator(tmp_path: Path) -> None:
    _, rows = csv_rows('unit_id,text\nu1,"a\u2028b"\nu2,c\n', "labels.csv")
    assert [row["unit_id"] for _, row in rows] == ["u1", "u2"]
    assert rows[0][1]["text"] == "a\u2028b"


def test_a_fifo_or_an_oversized_file_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "summary.json"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(SpecError, match="not a regular file"):
        read_text(fifo)
    assert time.monotonic() - started < 3.0  # a shared 2-core machine: generous
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a" * 2000)
    with pytest.raises(SpecError, match="larger than 1000 bytes"):
        read_text(big, "spec", max_bytes=1000)


def test_the_writer_replaces_a_planted_symlink_and_leaves_its_target_alone(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.html").symlink_to(victim)
    write_text(run / "report.html", "<html>")
    assert victim.read_text() == "mine"
    assert not (run / "report.html").is_symlink()
    assert (run / "report.html").read_text() == "<html>"
    assert sorted(p.name for p in run.iterdir()) == ["report.html"]  # no temporary left


def _special(kind: str, path: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    elif kind == "directory":
        path.mkdir()
    elif os.geteuid() == 0:  # a device node of /dev/null's numbers, made here only
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    else:
        pytest.skip("making a device node needs root")


@pytest.mark.parametrize("kind", ["fifo", "socket", "directory", "device"])
@pytest.mark.parametrize("name", ["report.html", "out.json", "x"])
def test_the_writer_never_replaces_a_device_fifo_socket_or_directory(
    tmp_path: Path, kind: str, name: str
) -> None:
    """`--out /dev/null` run as root once replaced the device with a regular file."""
    path = tmp_path / name
    _special(kind, path)
    before = os.lstat(path).st_mode
    with pytest.raises(OSError, match="is there, not a file; name a new file") as raised:
        write_text(path, "<html>")
    assert raised.value.filename == str(path)
    assert os.lstat(path).st_mode == before
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary left
    with pytest.raises(OSError, match="an empty path"):
        write_text(Path(""), "x")


def test_a_file_past_its_bound_is_refused_before_a_byte_is_read(tmp_path: Path) -> None:
    """A sparse file of 10 GB read as lines of NULs, 256 MiB at a time, before its size
    was known to be too large."""
    sparse = tmp_path / "events.jsonl"
    sparse.write_bytes(b'{"a": 1}\n' * 10)
    os.truncate(sparse, 10 << 30)
    started = time.monotonic()
    with pytest.raises(SpecError, match=r"events.jsonl: the file is larger than 1000 bytes$"):
        next(text_lines(sparse, max_bytes=1000))
    with pytest.raises(SpecError, match="larger than 1000 bytes"):
        read_bytes(sparse, "recording", max_bytes=1000)
    assert time.monotonic() - started < 1.0


# --- no str.splitlines() on JSON anywhere ----------------------------------------------------

PACKAGES = ("swarm", "models", "cluster", "observability")
# Each `.splitlines()` that remains, with why it never sees JSON, JSONL or CSV from a file.
SPLITLINES_ALLOWED = {
    "swarm/runtime/_pool.py": "the first line of an exception's message",
    "swarm/records/_rundir.py": "the first line of an error message",
    "swarm/cli/_submit.py": "a Ray job's log text and an error message, shown to the user",
    "swarm/experiments/trials/_runner.py": "the first line of an error message",
    "models/sim/_policy.py": "the sim policy's own prompt and code templates",
    "models/_local.py": "a subprocess's output, shown to the user",
    "cluster/_jobs.py": "the first line of an error message",
    "cluster/_ray.py": "the first line of an error message",
    "observability/report/_page.py": "counting the lines of a program's code for a title",
}


def _splitlines_calls(root: Path = REPO) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "splitlines"
                ):
                    found.setdefault(str(path.relative_to(root)), []).append(node.lineno)
    return found


def test_no_module_splits_text_with_splitlines_unless_listed_with_a_reason() -> None:
    found = _splitlines_calls()
    unlisted = {path: lines for path, lines in found.items() if path not in SPLITLINES_ALLOWED}
    assert not unlisted, (
        "str.splitlines() also splits on U+2028, U+2029, U+0085, \\v, \\f: split JSON, JSONL "
        f"and CSV on '\\n' (swarmlab.core.text_lines / json_lines / csv_rows): {unlisted}"
    )
    stale = sorted(set(SPLITLINES_ALLOWED) - set(found))
    assert not stale, f"listed but no longer calling splitlines(): drop them: {stale}"


def test_the_splitlines_scan_finds_a_new_call(tmp_path: Path) -> None:
    """The scan can fail: a module that splits JSONL with splitlines() is found."""
    (tmp_path / "swarm" / "records").mkdir(parents=True)
    (tmp_path / "swarm" / "records" / "_new.py").write_text(
        "import json\n\ndef rows(text):\n    return [json.loads(x) for x in text.splitlines()]\n"
    )
    assert _splitlines_calls(tmp_path) == {"swarm/records/_new.py": [4]}


@FAST
@given(
    keys=st.lists(st.sampled_from(["seed", "caps", "a", "b"]), min_size=1, max_size=5),
    nested=st.booleans(),
)
def test_a_key_written_twice_is_refused_in_json_and_yaml(keys: list[str], nested: bool) -> None:
    """The last of two equal keys used to win without a word: `caps: {programs: 5}` then
    `caps: {depth: 1}` ran with the default programs."""
    twice = len(set(keys)) != len(keys)
    inner_json = "{" + ", ".join(f'"{k}": {i}' for i, k in enumerate(keys)) + "}"
    inner_yaml = "".join(f"  {k}: {i}\n" for i, k in enumerate(keys))
    documents = {
        "f.json": (parse_json, f'{{"x": {inner_json}}}' if nested else inner_json),
        "f.yaml": (parse_yaml, f"x:\n{inner_yaml}" if nested else inner_yaml.replace("  ", "")),
    }
    for where, (parse, text) in documents.items():
        if twice:
            with pytest.raises(SpecError, match="is written twice") as refused:
                parse(text, where)
            _one_line(refused.value, where)
        else:
            assert len(parse(text, where)["x"] if nested else parse(text, where)) == len(keys)

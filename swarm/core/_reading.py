"""The one way in for bytes the lab did not just write itself, and the one way out to disk.

Run directories, recordings, specs, sweep and trials files, the live-run registry and imported
tables may have been written by anyone: a program's text reached them, a user edited them, a
disk cut them short. Everything read back goes through here:

- the file must be a regular file (a FIFO would block, a device never ends) of at most
  `max_bytes`, checked while reading, never after;
- its bytes must be UTF-8, and a failure names the line and the byte;
- lines are split on `\\n` only (`str.splitlines()` also splits on U+2028, U+2029, U+0085 and
  others, which JSON leaves unescaped inside strings);
- JSON holds finite numbers only (no NaN, Infinity, 1e999), ints of at most `MAX_INT_DIGITS`
  digits, strings without lone surrogates (they cannot be written back as UTF-8), and nests at
  most `MAX_JSON_DEPTH` deep;
- YAML has no aliases (`&a`/`*a` can make a small file expand exponentially) and nests at most
  `MAX_JSON_DEPTH` deep.

Every refusal is a `SpecError` of one line naming the file and the line: the CLI prints it and
exits 2. Writing goes through `write_text`, which never follows a symlink: the text goes to a
fresh temporary file beside the target and replaces the target's name, so a link planted under
that name is replaced, never written through.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ._errors import SpecError

MAX_TEXT_BYTES = 1 << 20
"""Largest file a user hands the lab (a spec, a sweep, a trials file, a program): 1 MiB."""
MAX_RECORD_BYTES = 256 << 20
"""Largest file of a run directory or a recording read back (events, inputs, traces): 256 MiB."""
MAX_TABLE_BYTES = 64 << 20
"""Largest imported table (trials agreement CSV or JSONL): 64 MiB."""
MAX_SMALL_BYTES = 64 << 10
"""Largest bookkeeping file (a live-run registry entry, a marker): 64 KiB."""
MAX_JSON_DEPTH = 100
"""Deepest nesting of a JSON or YAML value read back (the lab writes at most ~40 levels)."""
MAX_INT_DIGITS = 80
"""Longest int read back (the lab records ints of at most 256 bits, 78 digits)."""

_LONE_SURROGATE_HINT = re.compile(r"\\u[dD][89a-fA-F]")


NAME_SHOWN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}|[0-9]{1,9}")
"""A key or an anchor a message may quote: a short name. Anything else in a file may be content
the user never meant to show (a password file read as YAML): it is named, not quoted."""


def shown_name(key: object, what: str = "a key") -> str:
    """`the key 'name'` when `key` is a short name, else `what`."""
    return f"the key {key!r}" if isinstance(key, str) and NAME_SHOWN.fullmatch(key) else what


def _alias(anchor: object) -> str:
    return f"(*{anchor})" if isinstance(anchor, str) and NAME_SHOWN.fullmatch(anchor) else ""


class _Refused(ValueError):
    """A JSON value the reader does not admit (not a syntax error)."""


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"{text[:40]} is not a finite number")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"an int of {len(text)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _where(path: Path | str, line: int | None = None) -> str:
    return f"{path}:{line}" if line is not None else str(path)


def present(path: str | Path) -> bool:
    """Whether anything is at `path` (a file, a directory, a FIFO, a broken link). A command
    that needs a file asks this, not `is_file()`: what is there is then the reader's to refuse
    as not a regular file, never said to be missing."""
    return os.path.lexists(path)


def _replaceable(path: Path) -> None:
    """Refuse to write over anything at `path` but a regular file or a symlink: a device, a
    FIFO, a socket or a directory there is not the lab's to replace (`--out /dev/null`, run as
    root, would replace the device with a file)."""
    if not path.name:
        raise OSError(errno.EINVAL, "an empty path: name a file", str(path))
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        kind = "a directory" if stat.S_ISDIR(mode) else "a device, FIFO or socket"
        raise OSError(errno.EEXIST, f"{kind} is there, not a file; name a new file", str(path))


def _open_regular(path: Path, what: str) -> IO[bytes]:
    """`path` opened for reading if it is a regular file; never blocks on a FIFO."""
    label = f"{what} {path}" if what else str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise SpecError(f"{label}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SpecError(f"{label}: not a regular file")
    return os.fdopen(fd, "rb")


def _refuse_larger(handle: IO[bytes], max_bytes: int, refusal: str) -> None:
    """Refuse a file whose size is already past `max_bytes` before a byte of it is read (a
    sparse file of 10 GB reads as NULs, a line of 256 MiB at a time); the size is bounded while
    reading too, for a file that grows meanwhile."""
    if os.fstat(handle.fileno()).st_size > max_bytes:
        raise SpecError(refusal)


def read_bytes(path: str | Path, what: str = "", max_bytes: int = MAX_TEXT_BYTES) -> bytes:
    """A regular file's bytes, at most `max_bytes` of them (else `SpecError`)."""
    path = Path(path)
    label = f"{what} {path}" if what else str(path)
    with _open_regular(path, what) as handle:
        _refuse_larger(handle, max_bytes, f"{label}: larger than {max_bytes} bytes")
        raw = handle.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise SpecError(f"{label}: larger than {max_bytes} bytes")
    return raw


def decode_text(raw: bytes, where: str, first_line: int = 1) -> str:
    """`raw` as UTF-8 text without NUL bytes; a failure names the line and the byte."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + raw.count(b"\n", 0, exc.start)
        raise SpecError(
            f"{where}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})"
        ) from None
    if "\x00" in text:
        line = first_line + text.count("\n", 0, text.index("\x00"))
        raise SpecError(f"{where}:{line}: a binary file (NUL byte)")
    return text


def read_text(path: str | Path, what: str = "", max_bytes: int = MAX_TEXT_BYTES) -> str:
    """A regular file of at most `max_bytes` of UTF-8 text."""
    raw = read_bytes(path, what, max_bytes)
    return decode_text(raw, f"{what} {path}" if what else str(path))


def text_lines(path: str | Path, max_bytes: int = MAX_RECORD_BYTES) -> Iterator[tuple[int, str]]:
    """The lines of a text file, split on `\\n` only, numbered from 1, each checked UTF-8.

    The file is read line by line; its size is bounded while reading.
    """
    path = Path(path)
    left = max_bytes
    with _open_regular(path, "") as handle:
        _refuse_larger(handle, max_bytes, f"{path}: the file is larger than {max_bytes} bytes")
        number = 0
        while True:
            raw = handle.readline(left + 1)
            if not raw:
                return
            number += 1
            left -= len(raw)
            if left < 0:
                raise SpecError(f"{path}:{number}: the file is larger than {max_bytes} bytes")
            yield number, decode_text(raw, str(path), number).removesuffix("\n").removesuffix("\r")


def parse_json(text: str | bytes, where: str) -> Any:
    """One JSON value, admitted only within the reader's bounds (module docstring)."""
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
            object_pairs_hook=_distinct_pairs,
        )
    except _Refused as exc:
        raise SpecError(f"{where}: {exc}") from None
    except RecursionError:
        raise SpecError(f"{where}: nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, or an int Python will not convert
        raise SpecError(f"{where}: not JSON ({str(exc)[:200]})") from None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    deep = text.count("[") + text.count("{") > MAX_JSON_DEPTH
    surrogates = "\\u" in text and _LONE_SURROGATE_HINT.search(text) is not None
    if deep or surrogates:
        check_value(value, where)
    return value


def _distinct_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are distinct: a key written twice would drop a value unseen."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"{shown_name(key)} is written twice in one object")
            seen.add(key)
    return found


def parse_number(value: Any, where: str) -> float:
    """A number stored as text elsewhere (a shared Redis, a table): finite, at most
    `MAX_INT_DIGITS` long; anything else is refused in one line naming where it was read."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    try:
        if len(text) > MAX_INT_DIGITS + 20:
            raise ValueError
        number = float(text)
    except ValueError:
        raise SpecError(f"{where}: {text[:40]!r} is not a number") from None
    if not math.isfinite(number):
        raise SpecError(f"{where}: {text[:40]!r} is not a finite number")
    return number


def check_value(value: Any, where: str) -> None:
    """Refuse a parsed value nested deeper than `MAX_JSON_DEPTH` or holding a lone surrogate."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_string(item, where)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= MAX_JSON_DEPTH:
            raise SpecError(f"{where}: nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                _check_string(str(key), where)
                stack.append((child, depth + 1))
        else:
            stack.extend((child, depth + 1) for child in item)


def _check_string(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise SpecError(f"{where}: a string holds a lone surrogate (not Unicode text)") from None


_JSON_SPACE = " \t\r\n"
"""What JSON calls whitespace; a line of anything else (U+001C, say, which `str.strip` also
drops) is not blank but not JSON either, and is refused naming its line."""


def json_lines(path: str | Path, max_bytes: int = MAX_RECORD_BYTES) -> Iterator[tuple[int, Any]]:
    """The JSON values of a JSONL file with their line numbers; blank lines are skipped."""
    for number, line in text_lines(path, max_bytes):
        if line.strip(_JSON_SPACE):
            yield number, parse_json(line, _where(path, number))


def read_json(path: str | Path, what: str = "", max_bytes: int = MAX_RECORD_BYTES) -> Any:
    """One JSON document from a file."""
    text = read_text(path, what, max_bytes)
    return parse_json(text, f"{what} {path}" if what else str(path))


_QUOTED = re.compile(r"""\s*('[^']*'|"[^"]*")""")
"""Text PyYAML quotes from the document in its problem (a tag, a directive's name)."""


def parse_yaml(text: str, where: str) -> Any:
    """One YAML document without aliases, nested at most `MAX_JSON_DEPTH` deep, ints bounded."""
    import yaml

    try:
        loader = _bounded_loader()
        if yaml.__with_libyaml__:  # its composer is C: the shape is checked on its events first
            _check_shape(yaml.parse(text, Loader=loader))
        return yaml.load(text, Loader=loader)
    except _Refused as exc:
        raise SpecError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None)
        first = problem or str(exc).strip().split("\n")[0] or type(exc).__name__
        first = _QUOTED.sub("", first)[:120]  # a tag or a name quoted from the file: not shown
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise SpecError(f"{where}{line}: not valid YAML ({first})") from None
    except (ValueError, RecursionError) as exc:
        raise SpecError(f"{where}: not valid YAML ({str(exc)[:200]})") from None


def read_yaml(path: str | Path, what: str = "", max_bytes: int = MAX_TEXT_BYTES) -> Any:
    """One YAML document from a file, within the reader's bounds."""
    text = read_text(path, what, max_bytes)
    return parse_yaml(text, f"{what} {path}" if what else str(path))


def _check_shape(events: Iterator[Any]) -> None:
    """Refuse an alias, or nesting deeper than `MAX_JSON_DEPTH`, from a document's events (what
    the pure-Python loader's `compose_node` refuses, for libyaml's composer)."""
    import yaml

    depth = 0
    for event in events:
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(f"line {line}: an alias {_alias(event.anchor)}; write the value out")
        opens = isinstance(event, yaml.CollectionStartEvent)
        if opens or isinstance(event, yaml.ScalarEvent):
            if depth + 1 > MAX_JSON_DEPTH:
                raise _Refused(f"line {line}: nested deeper than {MAX_JSON_DEPTH} levels")
            depth += opens
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


_LOADER: Any = None


_EXPONENT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$")


def _bounded_loader() -> Any:
    """A safe YAML loader that refuses aliases, deep nesting and huge ints (built once): on
    libyaml's parser where PyYAML has it (about three times as fast on a large file), its
    shape then checked by `_check_shape`; else on the pure-Python one, checked as it composes."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml

    base: Any = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader

    class BoundedLoader(base):  # type: ignore[misc]
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                line = event.start_mark.line + 1
                raise _Refused(f"line {line}: an alias {_alias(event.anchor)}; write the value out")
            self.depth += 1
            try:
                if self.depth > MAX_JSON_DEPTH:
                    line = self.peek_event().start_mark.line + 1
                    raise _Refused(f"line {line}: nested deeper than {MAX_JSON_DEPTH} levels")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    def bounded_int(loader: Any, node: Any) -> Any:
        # Decimal, hex (0x), octal (0o) or binary (0b), with '_' between digits: bounded in
        # characters before it is built (4 bits a binary digit), then in decimal digits.
        text, line = str(node.value), node.start_mark.line + 1
        too_long = _Refused(f"line {line}: an int of more than {MAX_INT_DIGITS} digits")
        if sum(c.isalnum() for c in text) > 4 * MAX_INT_DIGITS:
            raise too_long
        value = yaml.SafeLoader.construct_yaml_int(loader, node)
        if isinstance(value, int) and abs(value) >= 10**MAX_INT_DIGITS:
            raise too_long
        return value

    def distinct_keys(loader: Any, node: Any) -> Any:
        # A key written twice would drop the first value without a word (the last one wins).
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) or key is None:
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise _Refused(f"line {line}: {shown_name(key)} is written twice")
                seen.add(key)
        return yaml.SafeLoader.construct_yaml_map(loader, node)

    BoundedLoader.add_constructor("tag:yaml.org,2002:int", bounded_int)
    BoundedLoader.add_constructor("tag:yaml.org,2002:map", distinct_keys)
    # A number with an exponent and no dot (`1e-05`, JSON's and YAML 1.2's float) is a float,
    # not text as YAML 1.1 has it: a spec refuses text for a number, and JSON writes such
    # numbers (a sweep's cell values reach the spec through JSON). Quoted, it stays text.
    BoundedLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT, list("-+.0123456789"))
    _LOADER = BoundedLoader
    return _LOADER


def csv_rows(text: str, where: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """A CSV table's columns, and its rows by column name with the line each ends on; a
    malformed table (an unclosed quote, a cell over the csv module's 128 KiB) names its line.

    Lines end at `\\r` or `\\n` outside quoted fields only (the csv module's rule), never at
    the other characters `str.splitlines()` would split on. A column named twice is refused:
    a row would keep one of its two cells without a word.
    """
    import csv

    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        columns = list(reader.fieldnames or [])
        named = [c for c in columns if c]
        if len(set(named)) != len(named):  # each row's dict would keep the last cell only
            twice = next(c for i, c in enumerate(named) if c in named[:i])
            column = f"the column {twice!r}" if NAME_SHOWN.fullmatch(twice) else "a column"
            raise SpecError(f"{where}:{reader.line_num}: not a CSV table ({column} is named twice)")
        rows = [(reader.line_num, dict(row)) for row in reader]
        return columns, rows
    except csv.Error as exc:
        raise SpecError(f"{where}:{reader.line_num}: not a CSV table ({exc})") from None


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` as UTF-8 at `path`, whole or not at all, never through a symlink.

    A lone surrogate in text that came from elsewhere is written as U+FFFD: it cannot stop the
    write.
    """
    return write_bytes(path, text.encode("utf-8", errors="replace"))


_TMP_NAME_BYTES = 200


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` at `path`, whole or not at all, never through a symlink.

    The bytes go to a new temporary file in the same directory (created exclusively, so no
    planted name is followed) and it is then renamed over `path`: a symlink at `path` is
    replaced by the file, its target untouched.
    """
    path = Path(path)
    _replaceable(path)
    try:
        # The temporary name is cut: a name the file system takes (255 bytes) must not fail here.
        prefix = os.fsdecode(os.fsencode(path.name)[:_TMP_NAME_BYTES])
        fd, tmp = tempfile.mkstemp(prefix=f".{prefix}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # name the file asked for, never the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        os.fchmod(fd, 0o644)  # as an ordinary new file, not mkstemp's private 0600
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

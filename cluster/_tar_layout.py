"""A tar's 512-byte headers checked before `tarfile` reads one (`swarmlab fetch`).

Python 3.11's `tarfile` parses a pax header's records with regular expressions that take
quadratic time on a crafted body (CVE-2024-6232: a 3 KB gzip of 2 MB of "1" held `fetch` for
hours), and takes a header with a bad checksum after the first as the archive's end. So the
headers are walked here first: a pax header (`x`) is bounded by `MAX_PAX_BYTES` and its records
parsed in one pass, keys the lab's writer may use only; header types the lab never writes
(global pax `g`, GNU long names `L`/`K`, sparse `S`) are refused, as is a wrong checksum or
size, a member cut short, or any byte after the end-of-archive block.
"""

from __future__ import annotations

from swarmlab.core import SpecError

MAX_PAX_BYTES = 4608
"""Largest pax header admitted: the longest name admitted (4096 bytes) and its record."""
_BLOCK = 512
_ZEROS = bytes(_BLOCK)
_PAX_KEYS = frozenset(
    {
        b"path",
        b"linkpath",
        b"size",
        b"mtime",
        b"atime",
        b"ctime",
        b"uid",
        b"gid",
        b"uname",
        b"gname",
    }
)
_REFUSED_TYPES = b"gLKS"
_NO_DATA_TYPES = b"123456"  # links, devices, directories, FIFOs: tarfile skips no data after them


def check_tar_layout(raw: bytes) -> None:
    """Refuse the tar `raw` unless every header is one the lab's writer could have made."""
    pos, pax_size, after_pax = 0, None, False
    while True:
        block = raw[pos : pos + _BLOCK]
        if len(block) < _BLOCK:
            raise SpecError("the archive's tar is cut short (no end-of-archive block)")
        if block == _ZEROS:
            if after_pax:
                raise SpecError("the archive's tar ends after a pax header")
            if raw.count(0, pos) != len(raw) - pos:
                raise SpecError("the archive's tar has bytes after its end")
            return
        kind, size = _header(block, pos)
        if kind in b"xX":
            if after_pax or size > MAX_PAX_BYTES:
                raise SpecError(f"the archive's tar has a pax header at byte {pos} it refuses")
            pax_size = _pax_records(raw[pos + _BLOCK : pos + _BLOCK + size], pos)
        else:
            size = size if pax_size is None else pax_size
            if kind in _NO_DATA_TYPES and size:
                raise SpecError(f"the archive's tar has a header at byte {pos} it refuses")
            pax_size = None
        after_pax = kind in b"xX"
        pos += _BLOCK + -(-size // _BLOCK) * _BLOCK
        if pos > len(raw):
            raise SpecError("the archive's tar is cut short (a member's bytes)")


def _header(block: bytes, pos: int) -> tuple[bytes, int]:
    """A header's type and size, its checksum checked."""
    kind = block[156:157]
    checksum = _number(block[148:156])
    if kind in _REFUSED_TYPES or checksum != sum(block[:148]) + 256 + sum(block[156:]):
        raise SpecError(f"the archive's tar has a header at byte {pos} it refuses")
    size = _number(block[124:136])
    if size is None:
        raise SpecError(f"the archive's tar has a header at byte {pos} it refuses")
    return kind, size


def _number(field: bytes) -> int | None:
    """A header's numeric field: octal digits (NUL or space ended), or positive base-256."""
    if field[:1] == b"\x80":
        return int.from_bytes(field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip(b" ")
    if not digits or len(digits.strip(b"01234567")) or not digits.isascii():
        return None
    return int(digits, 8)


def _pax_records(body: bytes, pos: int) -> int | None:
    """The `size` a pax header gives the next member, if any; its records parsed in one pass."""
    at, size = 0, None
    while at < len(body):
        space = body.find(b" ", at, at + 8)
        digits = body[at:space] if space > at else b""
        length = int(digits) if digits.isdigit() and digits.isascii() else 0
        record = body[at : at + length]
        key, equals, value = record[space - at + 1 : -1].partition(b"=")
        if not (equals and record.endswith(b"\n") and key in _PAX_KEYS and len(record) == length):
            raise SpecError(f"the archive's tar has a pax header at byte {pos} it refuses")
        if key == b"size":
            size = int(value) if value.isdigit() and value.isascii() and len(value) < 20 else None
            if size is None:
                raise SpecError(f"the archive's tar has a pax header at byte {pos} it refuses")
        at += length
    return size

"""A run directory as a bounded archive in a job's log, and back into a directory.

`swarmlab fetch` has one way to a cluster's head: its job server. A small job packs the run
directory (`pack_run_dir`) and prints it as text (`encode_archive`); the user's machine reads the
job's log back (`decode_archive`) and writes the files (`unpack_run_archive`).

What comes back is hostile, whoever wrote it: the log may be anything, the archive may be a
gzip bomb, a tar whose names leave the target (`..`, absolute paths, links), or a thousand
headers that claim terabytes. Every size is bounded before it is used: the compressed bytes, the
decompressed bytes (decompressed here, in bounded steps, never by `tarfile`), the number of
members and each name; only regular files and directories under `RUN_ID/` are admitted, and all
of them are checked before the first byte is written. Files are written with `write_bytes`
(never through a symlink), directories created one component at a time, refusing any that is
not a plain directory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import stat
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from swarmlab.core import ClusterError, SpecError, write_bytes

from ._tar_layout import check_tar_layout

MAX_RUN_BYTES = 256 << 20
"""Largest run directory `fetch` brings home by default (its files' bytes, uncompressed)."""
MAX_MEMBERS = 20_000
"""Most files and directories in one fetched run directory."""
MAX_NAME_CHARS = 1024
MAX_PART_BYTES = 255  # NAME_MAX and PATH_MAX of Linux's file systems, in UTF-8 bytes
MAX_PATH_BYTES = 4096
_HEADER_OVERHEAD = 2048  # per member: a tar header, and a long-name header at most
_BEGIN = re.compile(
    r"^swarmlab-archive v1 bytes=(?P<size>\d{1,12}) sha256=(?P<sha>[0-9a-f]{64})$", re.M
)
_END = "swarmlab-archive end"
_LINE = 76


@dataclass(frozen=True)
class Unpacked:
    """What `unpack_run_archive` wrote: the run directory and how many files, bytes."""

    path: Path
    files: int
    bytes: int


def pack_run_dir(run_dir: Path, run_id: str, max_bytes: int = MAX_RUN_BYTES) -> bytes:
    """`run_dir`'s regular files and directories as a gzip'd tar under `run_id/`.

    Symlinks and special files are left out (never followed); more than `max_bytes` of files
    or `MAX_MEMBERS` entries is a `ClusterError` rather than a cut-short copy."""
    buffer = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for path, info in _walk(run_dir):
            rel = path.relative_to(run_dir).as_posix()
            entry = tarfile.TarInfo(f"{run_id}/{rel}" if rel != "." else run_id)
            entry.mtime = int(info.st_mtime)
            if stat.S_ISDIR(info.st_mode):
                entry.type, entry.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(entry)
                continue
            data = _read_file(path, max_bytes - total)
            if data is None:
                raise ClusterError(
                    f"{run_dir}: the run directory holds more than {max_bytes} bytes; "
                    "raise --max-mb"
                )
            total += len(data)
            entry.size, entry.mode = len(data), 0o644
            tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


def _walk(root: Path) -> list[tuple[Path, os.stat_result]]:
    info = os.lstat(root)
    if not stat.S_ISDIR(info.st_mode):
        raise ClusterError(f"{root}: not a run directory")
    found = [(root, info)]
    pending = [root]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                mode = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(mode.st_mode):
                    pending.append(Path(entry.path))
                elif not stat.S_ISREG(mode.st_mode):
                    continue  # a symlink, a socket, a FIFO: not part of the record
                found.append((Path(entry.path), mode))
                if len(found) > MAX_MEMBERS:
                    raise ClusterError(f"{root}: more than {MAX_MEMBERS} files")
    return found


def _read_file(path: Path, budget: int) -> bytes | None:
    """The file's bytes, or None if it holds more than `budget`."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        data = handle.read(max(budget, 0) + 1)
    return data if len(data) <= budget else None


def encode_archive(data: bytes) -> str:
    """The archive as lines of text, framed, with its length and digest."""
    text = base64.b64encode(data).decode("ascii")
    body = "\n".join(text[i : i + _LINE] for i in range(0, len(text), _LINE))
    digest = hashlib.sha256(data).hexdigest()
    return f"swarmlab-archive v1 bytes={len(data)} sha256={digest}\n{body}\n{_END}\n"


def decode_archive(log: str, max_bytes: int) -> bytes:
    """The one archive framed in `log`, checked against its length and digest."""
    found = list(_BEGIN.finditer(log))
    if len(found) != 1:
        raise ClusterError(f"the job's log holds {len(found)} archives, not one")
    size = int(found[0]["size"])
    if size > max_bytes:
        raise ClusterError(f"the archive is {size} bytes, more than the limit of {max_bytes}")
    end = log.find(f"\n{_END}\n", found[0].end())
    if end < 0 or end - found[0].end() > 2 * size + 1024:
        raise ClusterError("the archive in the job's log is cut short")
    text = log[found[0].end() : end].replace("\n", "")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, binascii.Error):
        raise ClusterError("the archive in the job's log is not base64") from None
    if len(data) != size or hashlib.sha256(data).hexdigest() != found[0]["sha"]:
        raise ClusterError("the archive in the job's log does not match its length and digest")
    return data


def _gunzip(data: bytes, limit: int) -> bytes:
    """`data` decompressed, refused past `limit` bytes (a gzip bomb stops there)."""
    inflate = zlib.decompressobj(wbits=31)
    out = io.BytesIO()
    try:
        chunk = inflate.decompress(data, 1 << 20)
        while True:
            out.write(chunk)
            if out.tell() > limit:
                raise ClusterError(f"the archive unpacks to more than {limit} bytes")
            if not inflate.unconsumed_tail:
                break
            chunk = inflate.decompress(inflate.unconsumed_tail, 1 << 20)
    except zlib.error as exc:
        raise ClusterError(f"the archive is not gzip data ({exc})") from None
    if not inflate.eof or inflate.unused_data:
        raise ClusterError("the archive's gzip stream is cut short or followed by other bytes")
    return out.getvalue()


def _member_path(name: str, run_id: str) -> tuple[str, ...]:
    """The member's path below the run directory, or `SpecError` if it could leave it."""
    parts = name.split("/")
    bad = (
        len(name) > MAX_NAME_CHARS
        or parts[0] != run_id
        or any(p in ("", ".", "..") for p in parts)
        or any(ord(c) < 0x20 or c in "\\\x7f" for c in name)
    )
    if bad:
        raise SpecError(f"the archive names {name[:200]!r}, outside the run directory {run_id}")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise SpecError(f"the archive names {name[:200]!r}: not UTF-8") from None
    if _too_long(encoded):  # found here, not by the file system once files are written
        raise SpecError(
            f"the archive names {name[:200]!r}: longer than a file system takes "
            f"({MAX_PART_BYTES} bytes a component, {MAX_PATH_BYTES} in all)"
        )
    return tuple(parts[1:])


def _too_long(name: bytes) -> bool:
    return len(name) > MAX_PATH_BYTES or any(len(p) > MAX_PART_BYTES for p in name.split(b"/"))


def _checked_members(
    raw: bytes, run_id: str, max_bytes: int
) -> list[tuple[tuple[str, ...], bytes | None]]:
    """Every member as (path below the run directory, bytes; None for a directory)."""
    members: list[tuple[tuple[str, ...], bytes | None]] = []
    seen: set[tuple[str, ...]] = set()
    total = 0
    check_tar_layout(raw)  # before tarfile, whose pax parsing takes quadratic time
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                if len(members) >= MAX_MEMBERS:
                    raise SpecError(f"the archive holds more than {MAX_MEMBERS} files")
                rel = _member_path(member.name, run_id)
                if rel in seen:
                    raise SpecError(f"the archive names {member.name[:200]!r} twice")
                seen.add(rel)
                if member.isdir():
                    members.append((rel, None))
                    continue
                if not member.isfile() or not rel:
                    raise SpecError(f"the archive's {member.name[:200]!r} is not a plain file")
                total += member.size
                if total > max_bytes:
                    raise SpecError(f"the archive's files hold more than {max_bytes} bytes")
                handle = tar.extractfile(member)
                data = handle.read(member.size + 1) if handle else b""
                if len(data) != member.size:
                    raise SpecError(f"the archive's {member.name[:200]!r} is cut short")
                members.append((rel, data))
    except tarfile.TarError as exc:
        raise SpecError(f"the archive is not a tar ({exc})") from None
    files = {rel for rel, content in members if content is not None}
    folders = {rel[:depth] for rel, _ in members for depth in range(1, len(rel))}
    if both := files & folders:  # refused before the first byte is written, as every check
        raise SpecError(f"the archive has {'/'.join(min(both))[:200]!r} as a file and a folder")
    return members


def _plain_dir(path: Path) -> None:
    """`path` as a directory that is not a symlink: made if absent, else refused."""
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            raise SpecError(f"{path}: exists and is not a directory (a link or a file)") from None


def plain_out_dir(out: Path, create: bool = False) -> None:
    """Refuse a run directory `out` that is not a plain directory, nor any directory above it
    the lab would create (a link planted at `runs/RUN_ID` or `runs` is never written through);
    with `create`, make the missing ones, one component at a time.

    Of an absolute `out`, the directories above it that exist are the user's and followed."""
    for depth in range(1, len(out.parts) + 1):
        path = Path(*out.parts[:depth])
        if out.is_absolute() and depth < len(out.parts) and path.is_dir():
            continue
        if create:
            _plain_dir(path)
        elif os.path.lexists(path) and not stat.S_ISDIR(os.lstat(path).st_mode):
            raise SpecError(f"{path}: exists and is not a directory (a link or a file)")


def unpack_run_archive(data: bytes, run_id: str, out: Path, max_bytes: int) -> Unpacked:
    """Write the archive's run directory at `out` (its files replace files of the same name)."""
    raw = _gunzip(data, max_bytes + MAX_MEMBERS * _HEADER_OVERHEAD)
    members = _checked_members(raw, run_id, max_bytes)
    plain_out_dir(out)  # all of it checked before the first directory is made
    plain_out_dir(out, create=True)
    files = size = 0
    for rel, content in members:
        for depth in range(1, len(rel) + (content is None)):
            _plain_dir(out.joinpath(*rel[:depth]))
        if content is None:
            continue
        target = out.joinpath(*rel)
        if target.is_dir() and not target.is_symlink():
            raise SpecError(f"{target}: a directory where the archive has a file")
        write_bytes(target, content)
        files, size = files + 1, size + len(content)
    return Unpacked(out, files, size)

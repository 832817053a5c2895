"""Seeds derived from the run's seed: one per (program, purpose, call), stable across processes."""

from __future__ import annotations

import hashlib


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (hashlib, never hash(): that changes per interpreter)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1

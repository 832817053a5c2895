"""Detectors: rules that label what a program is about from what it recorded."""

from __future__ import annotations

import re

META_TASK_PATTERNS: dict[str, re.Pattern[str]] = {
    "time": re.compile(r"\btime (left|remaining)\b|\bremaining time\b|\bhours? left\b|\bdeadline"),
    "budget": re.compile(r"\bbudget|\bquota|\bhow much each\b|\bcaps?\b"),
    "coordination": re.compile(
        r"\bcoordinat|\bbranch(es)?\b|\bsibling|\bother (tasks|programs|branches|copies)"
        r"|\bfuture tasks|\bshared (list|database|record|results|notes)|\bblackboard|\bdatabase"
        r"|\brecord (every|each|all)\b|\bsummari[sz]e\b|\bshare (it|them|results|progress)"
    ),
    "self": re.compile(
        r"\bre-?creat|\bthis program\b|\bcop(y|ies) of (this|the|itself)|\bquine|\bitself\b"
        r"|\bimprove(d)? (the|this) (program|code|scaffold)|\bmeta\b"
    ),
}


def is_meta_task(task: str) -> bool:
    """True when the task is about the swarm itself (time, budget, coordination, self-copies)."""
    text = task.lower()
    return any(pattern.search(text) for pattern in META_TASK_PATTERNS.values())

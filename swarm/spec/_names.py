"""Names a user gives that become paths and Redis keys: run ids, experiment names, Redis URLs.

A run id names a directory (`runs/<run-id>`), a registry file and every Redis key of the run
(`swarmlab:run:<run-id>:...`). Checked here, once, it can neither climb out of a folder
(`../../x`) nor reach another run's keys through a pattern (`*`, `[a-z]`, `?`): only letters,
digits and `. _ = -`, starting with a letter or a digit, at most 128 characters.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from swarmlab.core import SpecError

RUN_ID_MAX = 128
RUN_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._=-]{{0,{RUN_ID_MAX - 1}}}")
RUN_ID_RULE = (
    f"use letters, digits, '.', '_', '=' and '-', starting with a letter or digit "
    f"(at most {RUN_ID_MAX})"
)

NAME_MAX = 64
NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{NAME_MAX - 1}}}")
NAME_RULE = (
    f"use letters, digits, '.', '_' and '-', starting with a letter or digit (at most {NAME_MAX});"
    " it starts every run id"
)

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
REDIS_TLS_OPTIONS = (
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_check_hostname",
)
"""The TLS options a `rediss://` URL may carry (as redis-py reads them); every client of the
lab's Redis honours them, so any other option is refused rather than quietly ignored by one."""
REDIS_URL_OPTIONS = ("db", *REDIS_TLS_OPTIONS)
CERT_REQS = ("none", "optional", "required")
BOOLEANS = ("true", "false", "yes", "no", "1", "0")


def is_run_id(value: object) -> bool:
    return isinstance(value, str) and RUN_ID.fullmatch(value) is not None


def check_run_id(value: str, what: str) -> str:
    """The run id, or a `SpecError` naming `what` (the flag or field it came from)."""
    if not is_run_id(value):
        raise SpecError(f"{what} {value!r}: not a run id ({RUN_ID_RULE})")
    return value


def is_redis_url(value: object) -> bool:
    if not isinstance(value, str) or not value.startswith(REDIS_SCHEMES):
        return False
    try:
        urlsplit(value).port  # noqa: B018 - a bad host or port raises
    except ValueError:
        return False
    return redis_url_problem(value) is None


def redis_url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL's options (`?name=value&...`), in one phrase naming the
    option; None when every client of the lab's Redis can honour them all."""
    parts = urlsplit(url)
    if "@" in parts.path + parts.query + parts.fragment:
        return (
            "its user name or password holds '/', '?' or '#' unescaped: percent-encode them "
            "(%2F, %3F, %23)"
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    for name, values in query.items():
        if name not in REDIS_URL_OPTIONS:
            return f"option {name!r} is not supported (supported: {', '.join(REDIS_URL_OPTIONS)})"
        if len(values) > 1:
            return f"option {name!r} is given {len(values)} times"
        value = values[0]
        if not value:
            return f"option {name!r} has no value"
        if name in REDIS_TLS_OPTIONS and not url.startswith("rediss://"):
            return f"option {name!r} is a TLS option: it needs a rediss:// URL"
        if name == "ssl_cert_reqs" and value not in CERT_REQS:
            return f"ssl_cert_reqs {value!r}: expected one of {', '.join(CERT_REQS)}"
        if name == "ssl_check_hostname" and value.lower() not in BOOLEANS:
            return f"ssl_check_hostname {value!r}: expected one of {', '.join(BOOLEANS)}"
        if name == "db" and not value.isdigit():
            return f"db {value!r}: expected a database number"
    if "ssl_keyfile" in query and "ssl_certfile" not in query:
        return "option 'ssl_keyfile' needs 'ssl_certfile' (the client certificate it signs for)"
    return None


_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,20}://)[^\s'\"<>]*@")


def without_credentials(text: str) -> str:
    """`text` with every URL's user and password (all between `scheme://` and the last `@`
    of the URL) shown as `***`: a message that quotes a URL it refused, from a flag, a
    variable or a spec, never prints a credential."""
    return _CREDENTIALS.sub(lambda m: m.group(1) + "***@", text)


def shown_redis_url(url: str) -> str:
    """A Redis URL as a message shows it: everything between the scheme and the host's last
    `@` (user and password) is `***`. A message never prints a credential, whatever the URL's
    shape (an unescaped `@`, `/` or `?` in a password included)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***" if "@" in url else url
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return scheme + sep + rest


def check_redis_url(value: str, what: str = "--redis-url") -> str:
    """A URL redis-py can open; anything else is the user's to fix (exit 2), not a crash."""
    if not isinstance(value, str) or not value.startswith(REDIS_SCHEMES):
        raise SpecError(
            f"{what} {shown_redis_url(value)!r}: expected redis://host:port/db, rediss://... or "
            "unix:///path"
        )
    try:  # what redis-py would fail on later, with a traceback: a bad host or port
        parts = urlsplit(value)
        if "@" not in parts.path + parts.query + parts.fragment:  # else refused below
            parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:  # its text can quote the netloc, password included: never shown
        raise SpecError(
            f"{what} {shown_redis_url(value)!r}: not a valid URL (its host or port cannot be read)"
        ) from None
    problem = redis_url_problem(value)
    if problem is not None:
        raise SpecError(f"{what}: {problem}")
    return value

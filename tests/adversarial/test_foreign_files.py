"""A file the user names as a spec, a sweep or a sweep's `base` may be any file on the machine
(`base: /etc/shadow`). Refusing it names the file and what is wrong with it, and never quotes
what it holds: a file that is not a YAML mapping of a spec's fields is said to be none, and a key,
an anchor or a tag that is not a short name is named, not shown."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from helpers.cli import one_line_error, swarmlab
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.core import SpecError
from swarmlab.experiments import load_sweep
from swarmlab.spec import load_spec

SECRET = "$6$rounds=5000$Xq9/abcdefSECRET.hash"
SHADOW = f"root:{SECRET}:20228:0:99999:7:::\ndaemon:*:20228:0:99999:7:::\n"


@pytest.mark.parametrize(
    "text", [SHADOW, f"root:{SECRET}:1::\nroot:{SECRET}:1::\n", f"{SECRET}\n", f"- {SECRET}\n"]
)
def test_a_sweeps_base_that_is_not_a_spec_is_named_and_never_quoted(
    tmp_path: Path, text: str
) -> None:
    shadow = tmp_path / "shadow"
    shadow.write_text(text)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"name: s\nbase: {shadow}\nseeds: [1]\n")
    done = swarmlab("sweep", str(sweep), "--out", str(tmp_path / "out"))
    one_line_error(done, 2, str(shadow))
    assert "Xq9" not in done.stderr
    for command in ("run", "sweep"):
        done = swarmlab(command, str(shadow), "--out", str(tmp_path / "out"))
        one_line_error(done, 2, str(shadow))
        assert "Xq9" not in done.stderr


SECRETS = st.from_regex(r"\$6\$[A-Za-z0-9./]{3,16}\$Xq9[A-Za-z0-9./:]{0,20}", fullmatch=True)
LINES = st.sampled_from(
    [
        "{s}:",
        "{s}: 1",
        "{s}:x:1:2::",
        "'{s}': 2",
        "- {s}",
        "{s}",
        "k: !<{s}> x",
        "k: !!python/object:{s} x",
        "k: &{s} 1",
        "%TAG !e! {s}",
        'k: "{s}\\q"',
        "  {s}: [1, 2]",
        "world:\n  '{s}': 1",
    ]
)


@settings(max_examples=300, deadline=None)
@given(secret=SECRETS, lines=st.lists(LINES, min_size=1, max_size=4))
def test_no_refusal_quotes_what_a_foreign_file_holds(secret: str, lines: list[str]) -> None:
    text = "\n".join(line.format(s=secret) for line in lines + lines[:1]) + "\n"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "file"
        path.write_text(text)
        for load in (load_spec, load_sweep):
            with pytest.raises(SpecError) as refused:
                load(str(path))
            said = str(refused.value)
            assert said.startswith(str(path)), said
            assert "\n" not in said
            assert "Xq9" not in said, said

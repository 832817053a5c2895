"""The README stays a page a newcomer reads in five minutes, and every link in the docs lands.

The README holds the two set-up commands and points at docs/ for the reference; a link (or an
anchor) that no longer resolves is a fact a reader cannot find, so each one is checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading (GitHub's rule)."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    lines = page.read_text(encoding="utf-8").split("\n")
    return {slug(line.lstrip("#")) for line in lines if re.match(r"#{1,6} ", line)}


def test_the_readme_fits_a_page_and_gives_the_two_commands() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.split("\n")) <= 250
    assert "scripts/run.sh" in text
    assert "scripts/test.sh" in text
    assert "scripts/test.sh" in (REPO / ".ci" / "run").read_text(encoding="utf-8")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in anchors(dest)):
            broken.append(target)
    assert not broken, f"{page.name}: {broken}"


def test_the_slug_rule_matches_a_heading_with_code_and_punctuation() -> None:
    heading = "## The run directory (`runs/<run-id>/` or `--out DIR`)"
    assert slug(heading.lstrip("#")) == "the-run-directory-runsrun-id-or---out-dir"


def test_the_spec_page_names_every_field_of_the_spec() -> None:
    """docs/spec.md's table names every field a spec file may hold, and every cap and limit."""
    from swarmlab.spec import Caps, ExperimentSpec, ProgramLimits

    page = (REPO / "docs" / "spec.md").read_text()
    fields = [*ExperimentSpec.model_fields, *Caps.model_fields, *ProgramLimits.model_fields]
    missing = [f for f in fields if f"`{f}`" not in page]
    assert missing == []

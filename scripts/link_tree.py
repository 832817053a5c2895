"""Build the installed layout of `swarmlab` as a tree of links, for tools that read files rather
than import them (mypy): `swarmlab/` links to what `swarm/` holds, plus `swarmlab/models`,
`swarmlab/cluster` and `swarmlab/observability` linking to those folders. The mapping is read
from pyproject.toml, so the tree always matches what `pip install` builds.

Usage: python scripts/link_tree.py OUT_DIR  (OUT_DIR is emptied first).
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path


def link_tree(project: Path, out: Path) -> Path:
    mapping: dict[str, str] = tomllib.loads((project / "pyproject.toml").read_text())["tool"][
        "setuptools"
    ]["package-dir"]
    shutil.rmtree(out, ignore_errors=True)
    for package, folder in sorted(mapping.items(), key=lambda kv: kv[0].count(".")):
        target = out.joinpath(*package.split("."))
        source = (project / folder).resolve()
        if package.count(".") == 0:
            target.mkdir(parents=True)
            for entry in source.iterdir():
                if entry.name != "__pycache__":
                    (target / entry.name).symlink_to(entry)
        else:
            target.symlink_to(source, target_is_directory=True)
    return out


if __name__ == "__main__":
    project = Path(__file__).resolve().parent.parent
    print(link_tree(project, Path(sys.argv[1]).resolve()))

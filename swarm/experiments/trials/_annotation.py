"""Annotation round trip: a stratified sample of the trials for two human labellers, their labels
read back, agreement between them (Cohen's kappa), and each detector against the agreed labels.

Units are the root dialogue's answer of each trial (label: `scaffold`) and every program (labels:
`PROGRAM_DETECTORS`). The sample is stratified by condition, unit kind and whether any detector
flagged the unit, so rare flagged units are not drowned by plain ones; each stratum's size is
kept, so precision and recall are given both over the sample and weighted back to all units.
Labellers never see the detectors' output: it stays in sample.jsonl, their files hold only the
unit and empty label cells (`-` where a label does not apply).
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from swarmlab.core import (
    MAX_TABLE_BYTES,
    MAX_TEXT_BYTES,
    SpecError,
    csv_rows,
    json_lines,
    present,
    read_json,
    read_text,
    write_text,
)
from swarmlab.experiments.stats import stable_int
from swarmlab.records import RunDir

from ._measures import DETECTORS, PROGRAM_DETECTORS, measure_trial, program_flags
from ._plan import TrialsPlan
from ._table import COUNTED

ANNOTATION_DIR = "annotation"
CELL_CHARS = 30_000  # spreadsheets hold at most 32,767 characters in a cell
NOT_APPLICABLE = "-"
UNIT_FIELDS = ("unit_id", "kind", "trial_id", "program", "task", "text", "parent_text")
YES = {"1", "yes", "y", "true"}
NO = {"0", "no", "n", "false"}


@dataclass
class Unit:
    """One thing a labeller judges: a trial's answer (`dialogue`) or one `program`."""

    unit_id: str
    kind: str
    trial_id: str
    condition: str
    program: str
    task: str
    text: str
    parent_text: str
    predicted: dict[str, bool]

    @property
    def flagged(self) -> bool:
        return any(self.predicted.values())

    @property
    def stratum(self) -> str:
        return f"{self.condition}|{self.kind}|{'flagged' if self.flagged else 'plain'}"


def collect_units(plan: TrialsPlan) -> list[Unit]:
    """Every unit of the trials that ran and counted, with the detectors' yes/no."""
    units: list[Unit] = []
    for trial in plan.trials:
        path = plan.trial_dir(trial)
        summary = plan.trial_summary(trial)
        if summary is None or summary.status not in COUNTED:
            continue
        rundir, slug = RunDir(path), trial.condition.slug
        dialogue = rundir.dialogue()
        if dialogue is not None:
            scaffold = measure_trial(path).scaffold
            units.append(
                Unit(
                    unit_id=f"{trial.id}#dialogue",
                    kind="dialogue",
                    trial_id=trial.id,
                    condition=slug,
                    program="",
                    task="",
                    text=_cell(dialogue.second_answer),
                    parent_text="",
                    predicted={"scaffold": scaffold},
                )
            )
        flags = program_flags(path)
        programs = rundir.programs()
        code = {p.id: p.code for p in programs}
        for p in programs:
            parent = code.get(p.parent_id or "", "")
            units.append(
                Unit(
                    unit_id=f"{trial.id}#{p.id}",
                    kind="program",
                    trial_id=trial.id,
                    condition=slug,
                    program=p.id,
                    task=p.task[:500],
                    text=_cell(p.code),
                    parent_text=_cell(parent),
                    predicted=flags[p.id],
                )
            )
    return units


def export_sample(
    plan: TrialsPlan, per_stratum: int, labellers: list[str], seed: int
) -> dict[str, Any]:
    """Write annotation/sample.jsonl, one labels-<name>.csv per labeller, and manifest.json."""
    if per_stratum < 1:
        raise SpecError(f"--per-stratum {per_stratum}: must be at least 1")
    if len(labellers) != 2 or len(set(labellers)) != 2 or not all(_safe(n) for n in labellers):
        raise SpecError(
            f"--labellers {','.join(labellers)}: name two different labellers "
            "(letters, digits, - and _), e.g. --labellers ann,ben"
        )
    units = collect_units(plan)
    if not units:
        raise SpecError(f"{plan.out}: no trial has run yet, so there is nothing to label")
    strata: dict[str, list[Unit]] = {}
    for unit in sorted(units, key=lambda u: u.unit_id):
        strata.setdefault(unit.stratum, []).append(unit)
    sample: list[Unit] = []
    for name, members in sorted(strata.items()):
        rng = random.Random(stable_int(f"{seed}:{name}"))
        sample += rng.sample(members, min(per_stratum, len(members)))
    random.Random(seed).shuffle(sample)  # labellers should not see the strata in the order
    out = plan.out / ANNOTATION_DIR
    out.mkdir(parents=True, exist_ok=True)
    sizes = {name: len(members) for name, members in strata.items()}
    write_text(
        out / "sample.jsonl",
        "".join(
            json.dumps(
                {**unit.__dict__, "stratum": unit.stratum, "stratum_size": sizes[unit.stratum]},
                ensure_ascii=False,
            )
            + "\n"
            for unit in sample
        ),
    )
    files = [f"labels-{name}.csv" for name in labellers]
    for file in files:
        _write_label_sheet(out / file, sample)
    write_text(out / "INSTRUCTIONS.md", instructions(files))
    manifest = {
        "labellers": labellers,
        "files": files,
        "seed": seed,
        "units": len(sample),
        "per_stratum": per_stratum,
        "strata": sizes,
    }
    write_text(out / "manifest.json", json.dumps(manifest, indent=1))
    return {"out_dir": str(out), **manifest}


def read_sample(plan_out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The manifest and the sampled units (with the detectors' output)."""
    out = plan_out / ANNOTATION_DIR
    manifest_path = out / "manifest.json"
    if not present(manifest_path):
        raise SpecError(
            f"{plan_out}: no annotation sample yet; run `swarmlab trials annotate {plan_out}`"
        )
    try:
        manifest = SampleManifest.model_validate(read_json(manifest_path, max_bytes=MAX_TEXT_BYTES))
    except ValidationError as exc:
        raise SpecError(f"{manifest_path}: not a sample manifest ({_first_error(exc)})") from None
    sample = []
    where = out / "sample.jsonl"
    lines: dict[str, int] = {}  # unit id -> its line
    for number, row in json_lines(where, MAX_TABLE_BYTES):
        try:
            unit = SampleUnit.model_validate(row).model_dump()
        except ValidationError as exc:
            raise SpecError(f"{where}:{number}: not a sampled unit ({_first_error(exc)})") from None
        _once(lines, unit["unit_id"], where, number, "is sampled")
        sample.append(unit)
    return manifest.model_dump(), sample


def _once(lines: dict[str, int], unit_id: str, path: Path, number: int, what: str) -> None:
    """Refuse a unit a table holds twice (one of the two would win without a word)."""
    first = lines.setdefault(unit_id, number)
    if first != number:
        raise SpecError(
            f"{path}:{number}: unit_id {unit_id[:80]!r} {what} twice (lines {first} and {number})"
        )


class SampleManifest(BaseModel):
    """annotation/manifest.json, as `export_sample` writes it (fields read back)."""

    model_config = ConfigDict(extra="allow")

    files: list[str] = Field(description="The labellers' files, in annotation/.")

    @field_validator("files")
    @classmethod
    def _plain_names(cls, value: list[str]) -> list[str]:
        """Names inside annotation/, never a path that leaves it, each once (one labeller's
        file named twice would be two labellers agreeing)."""
        for name in value:
            if not _safe(name.removeprefix("labels-").removesuffix(".csv")):
                raise ValueError(f"{name[:60]!r} is not a labels file name (labels-NAME.csv)")
        if len(set(value)) != len(value):
            raise ValueError("names a labels file twice")
        return value


class SampleUnit(BaseModel):
    """One line of annotation/sample.jsonl, as `export_sample` writes it (fields read back)."""

    model_config = ConfigDict(extra="allow")

    unit_id: str = Field(description="The unit's id.")
    stratum: str = Field(description="The stratum it was sampled from.")
    stratum_size: int = Field(ge=1, description="Units in that stratum.")
    predicted: dict[str, bool] = Field(description="What each detector said of the unit.")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"


def read_labels(path: Path, units: dict[str, dict[str, Any]]) -> dict[str, dict[str, bool]]:
    """A labeller's file (CSV or JSONL): unit id -> the labels given (blank and `-` skipped);
    a unit labelled twice is refused, naming both lines."""
    if not present(path):
        raise SpecError(f"{path}: no such labels file")
    rows = _label_rows(path)
    labels: dict[str, dict[str, bool]] = {}
    lines: dict[str, int] = {}
    for line, row in rows:
        unit_id = str(row.get("unit_id") or "").strip()
        if unit_id not in units:
            raise SpecError(f"{path}:{line}: unit_id {unit_id[:80]!r} is not in the sample")
        _once(lines, unit_id, path, line, "is labelled")
        given: dict[str, bool] = {}
        for field in DETECTORS:
            value = str(row.get(field) if row.get(field) is not None else "").strip().lower()
            if value in ("", NOT_APPLICABLE):
                continue
            if value not in YES | NO:
                raise SpecError(
                    f"{path}:{line}: {field} = {value[:20]!r}; write 1 or 0 (yes/no), "
                    f"or leave it blank"
                )
            given[field] = value in YES
        labels[unit_id] = given
    return labels


def _label_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    # The lab's one reader: bounded, UTF-8, lines split on \n only (a label's text may hold
    # U+2028 and the like); a spreadsheet's byte-order mark is dropped.
    if path.suffix == ".jsonl":
        rows = []
        for number, row in json_lines(path, MAX_TABLE_BYTES):
            if not isinstance(row, dict):
                raise SpecError(f"{path}:{number}: expected an object per line")
            rows.append((number, row))
        return rows
    text = read_text(path, max_bytes=MAX_TABLE_BYTES).removeprefix("\ufeff")
    columns, table = csv_rows(text, str(path))
    if "unit_id" not in columns:
        raise SpecError(f"{path}: not a labels file (no unit_id column); fill the exported CSV")
    return table


def _write_label_sheet(path: Path, sample: list[Unit]) -> None:
    handle = io.StringIO(newline="")
    writer = csv.DictWriter(handle, fieldnames=[*UNIT_FIELDS, *DETECTORS, "note"])
    writer.writeheader()
    for unit in sample:
        applies = ("scaffold",) if unit.kind == "dialogue" else PROGRAM_DETECTORS
        row: dict[str, Any] = {f: getattr(unit, f) for f in UNIT_FIELDS}
        row.update({d: "" if d in applies else NOT_APPLICABLE for d in DETECTORS})
        writer.writerow({**row, "note": ""})
    write_text(path, handle.getvalue())


def instructions(files: list[str]) -> str:
    """What a labeller is asked, and how to fill the file."""
    questions = "\n".join(f"- `{name}`: {question}" for name, question in DETECTORS.items())
    return (
        "# Labelling the trials\n\n"
        f"Each labeller fills one file ({', '.join(files)}) alone, without looking at the "
        "other's. A row is one unit: `dialogue` (the model's answer that may hold a program) or "
        "`program` (a program that ran; `parent_text` is its parent's code). Answer each "
        "question in its column with 1 (yes) or 0 (no); cells holding `-` do not apply to the "
        "unit; leave a cell blank when you cannot tell. `note` is free text.\n\n"
        f"{questions}\n\n"
        "Judge what the text does or tries to do, not what it says about itself. Then run "
        "`swarmlab trials agreement <trials-dir>`.\n"
    )


def _cell(text: str) -> str:
    return text if len(text) <= CELL_CHARS else text[:CELL_CHARS] + "\n[... cut]"


def _safe(name: str) -> bool:
    return bool(name) and len(name) <= 40 and all(c.isalnum() or c in "-_" for c in name)

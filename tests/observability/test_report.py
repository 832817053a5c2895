"""The report: one self-contained page that renders in a real browser without script errors,
a comparison page, a terminal table, and the `report` / `traces` commands."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.labelled_run import PROGRAMS, write_run_dir

from swarmlab.cli._report import (
    NO_SUMMARY,
    add_report_parser,
    add_traces_parser,
    report_command,
    traces_command,
)
from swarmlab.core import SpecError
from swarmlab.observability.analysis import (
    BLIND,
    QUINE_THRESHOLD,
    VALIDITY_FLOOR,
    EmergenceMetrics,
    analyze_run,
    analyze_trace,
)
from swarmlab.observability.report import format_metrics_table, write_comparison, write_report
from swarmlab.records import RunDir

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is missing (Debian: apt-get install -y chromium)",
)
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(|@import|<link\b""", re.I)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run_dir(tmp_path / "labelled-run")


def chromium(page: Path, tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--virtual-time-budget=3000",
            *args,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def rendered_dom(page: Path, tmp_path: Path) -> str:
    dom = chromium(page, tmp_path, "--dump-dom")
    assert 'id="script-error"' not in dom, re.findall(r'id="script-error">([^<]*)', dom)
    assert 'data-ready="1"' in dom
    return dom


def screenshot(page: Path, tmp_path: Path, out: Path) -> None:
    out.unlink(missing_ok=True)
    chromium(page, tmp_path, f"--screenshot={out}", "--window-size=1400,2000")
    assert out.stat().st_size > 20_000  # a real picture, not a blank page


def test_the_report_is_one_self_contained_page(run_dir: Path) -> None:
    page = write_report(run_dir)
    assert page == run_dir / "report.html"
    html = page.read_text()
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assert html.count("<svg") >= 10  # plots, timeline, one chart per cap
    for pid, *_ in PROGRAMS:
        assert f'id="prog-{pid}"' in html  # every program is in the tree
        assert f'href="#prog-{pid}"' in html  # and linked from the timeline
    for field in ("quine_rate", "cross_lineage_density", "swarm_call_share", "crashed_denied"):
        description = EmergenceMetrics.model_fields[field].description or ""
        assert description.replace("'", "&#x27;") in html
    assert "quine of p0" in html
    assert "same code as p0.2" in html  # p0.1.2's flag
    assert "same code as p0.1.2" in html  # and p0.2's: neither is "the copy"
    assert "crash: denied" in html
    assert "meta-task" in html
    assert "p0.2.1</a> tried to stop <a" in html  # the control attempts, listed
    assert "NameError: name &#x27;totl&#x27; is not defined" in html
    assert '<span class="dec denied">denied</span></td><td>kill_policy</td>' in html
    assert "limit 6" in html  # the depth cap's dashed line
    assert "(a simulation policy, not a language model)" in html


@needs_chromium
def test_the_report_renders_in_chromium_without_script_errors(
    run_dir: Path, tmp_path: Path, artifacts_dir: Path
) -> None:
    page = write_report(run_dir)
    dom = rendered_dom(page, tmp_path)
    assert "expand all" in dom
    assert "collapse all" in dom
    screenshot(page, tmp_path, artifacts_dir / "report.png")


@needs_chromium
def test_expand_and_collapse_buttons_work_and_errors_show(run_dir: Path, tmp_path: Path) -> None:
    html = write_report(run_dir).read_text()
    probe = """<script>
    function count() { return document.querySelectorAll('details[open]').length; }
    document.getElementById('expand-all').click();
    document.body.dataset.expanded = count() + '/' + document.querySelectorAll('details').length;
    document.getElementById('collapse-all').click();
    document.body.dataset.collapsed = String(count());
    </script></body>"""
    clicked = tmp_path / "clicked.html"
    clicked.write_text(html.replace("</body>", probe))
    dom = rendered_dom(clicked, tmp_path)
    opened, total = re.search(r'data-expanded="(\d+)/(\d+)"', dom).groups()  # type: ignore[union-attr]
    assert opened == total
    assert int(total) > len(PROGRAMS)
    assert 'data-collapsed="0"' in dom
    # the error banner appears when a script fails, so its absence above means something
    broken = tmp_path / "broken.html"
    broken.write_text(html.replace("</body>", "<script>undefinedThing();</script></body>"))
    assert 'id="script-error"' in chromium(broken, tmp_path, "--dump-dom")


def twin_run(tmp_path: Path) -> Path:
    """A second run: the labelled one under another id, without its quine's edit."""
    other = write_run_dir(tmp_path / "other-run", with_traces=False)
    summary = json.loads((other / "summary.json").read_text())
    summary["run_id"] = "other-run"
    (other / "summary.json").write_text(json.dumps(summary))
    return other


@needs_chromium
def test_the_comparison_page_puts_runs_side_by_side(run_dir: Path, tmp_path: Path) -> None:
    other = twin_run(tmp_path)
    page = write_comparison([run_dir, other], tmp_path / "comparison.html")
    html = page.read_text()
    assert not EXTERNAL.search(html)
    assert "<th>labelled-run</th><th>other-run</th>" in html
    assert '<td class="metric">cross_lineage_edges</td><td class="value">2</td>' in html
    rendered_dom(page, tmp_path)


def test_the_terminal_table_has_one_column_per_run(run_dir: Path) -> None:
    table = format_metrics_table(
        {"from-dir": analyze_run(run_dir), "from-trace": analyze_trace(run_dir / "traces.jsonl")}
    )
    lines = table.splitlines()
    assert lines[0].split() == ["metric", "from-dir", "from-trace"]
    assert set(lines[1]) <= {"-", " "}
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert rows["cross_lineage_edges"] == ["2", "2"]
    assert rows["swarm_call_share"] == ["0.783", "0.783"]
    assert rows["meta_tasks"] == ["3", "3"]
    assert rows["crashed_denied"] == ["1", "1"]
    assert rows["paperclips"] == ["5,000", "-"]  # a trace has no outcome
    assert rows["denials_by_cap"][0] == "children:1"


def cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="swarmlab")
    sub = parser.add_subparsers(dest="command", required=True)
    add_report_parser(sub)
    add_traces_parser(sub)
    return parser.parse_args(argv)


def test_the_report_command_defaults_to_the_analysis_quine_threshold(run_dir: Path) -> None:
    assert cli("report", str(run_dir)).quine_threshold == QUINE_THRESHOLD


def test_report_command_prints_the_table_and_writes_the_page(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report_command(cli("report", str(run_dir))) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["metric", "labelled-run"]
    assert f"report: {run_dir / 'report.html'}" in out
    assert (run_dir / "report.html").is_file()

    assert report_command(cli("report", str(run_dir), "--json")) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["cross_lineage_edges"] == 2
    assert "report.html" in captured.err

    other = twin_run(tmp_path)
    out_page = tmp_path / "pages" / "side-by-side.html"  # its folder is made, as traces' is
    args = cli("report", str(run_dir), str(other), "--out", str(out_page), "--json")
    assert report_command(args) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"labelled-run", "other-run"}
    assert out_page.is_file()

    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(SpecError, match=r"taken/page\.html: cannot write"):
        report_command(cli("report", str(run_dir), "--out", str(tmp_path / "taken" / "page.html")))


def test_a_run_without_its_summary_says_its_figures_were_not_checked(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """summary.json holds the counts the records are checked against: without it the report
    still shows the records, and says, on the terminal and on the page, that nothing checked
    them."""
    assert report_command(cli("report", str(run_dir))) == 0
    assert "no summary.json" not in capsys.readouterr().err
    (run_dir / "summary.json").unlink()
    assert report_command(cli("report", str(run_dir))) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [f"swarmlab report: {run_dir}: {NO_SUMMARY}"]
    page = (run_dir / "report.html").read_text()
    assert "the run wrote no summary.json" in page
    assert "not checked against the run&#x27;s counts" in page


def test_report_reads_each_file_of_the_run_once(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The figures and the page come from one reading: a large run costs one parse of its
    programs and events, and a file changed between two readings cannot make the page and the
    table disagree."""
    reads: Counter[str] = Counter()
    for name in ("summary", "dialogue", "programs", "events"):
        original = getattr(RunDir, name)

        def counted(
            self: RunDir, *args: Any, _name: str = name, _original: Any = original, **kw: Any
        ) -> Any:
            reads[_name] += 1
            return _original(self, *args, **kw)

        monkeypatch.setattr(RunDir, name, counted)
    for argv in (("report", str(run_dir)), ("report", str(run_dir), "--json")):
        reads.clear()
        assert report_command(cli(*argv)) == 0
        assert reads == {"summary": 1, "dialogue": 1, "programs": 1, "events": 1}
    capsys.readouterr()


def test_traces_command_writes_jaeger_json(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "jaeger" / "trace.json"
    assert traces_command(cli("traces", str(run_dir), "--jaeger-json", str(out))) == 0
    data = json.loads(out.read_text())
    assert len(data["data"][0]["spans"]) == len((run_dir / "traces.jsonl").read_text().splitlines())
    assert "spans in 1 trace(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "{tmp}/missing"], "no such run directory"),
        (["report", "{tmp}"], "not a run directory (no programs.jsonl)"),
        (["report", "{run}", "--quine-threshold", "0"], "must be in (0, 1]"),
        (["traces", "{tmp}/missing", "--jaeger-json", "{tmp}/o.json"], "no such run directory"),
        (["traces", "{tmp}", "--jaeger-json", "{tmp}/o.json"], "not a run directory"),
        (["traces", "{bare}", "--jaeger-json", "{tmp}/o.json"], "no traces.jsonl"),
    ],
)
def test_command_errors_are_one_line_spec_errors(
    argv: list[str], message: str, tmp_path: Path
) -> None:
    run = write_run_dir(tmp_path / "run")
    bare = write_run_dir(tmp_path / "bare", with_traces=False)
    args = cli(*(a.format(tmp=tmp_path, run=run, bare=bare) for a in argv))
    command = report_command if args.command == "report" else traces_command
    with pytest.raises(SpecError) as info:
        command(args)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert SpecError.exit_code == 2


# --- a real run ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("real") / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "swarmlab.cli",
            "run",
            "paperclips",
            "--out",
            str(out),
            "--quiet",
            "--set",
            "caps.programs=40",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    yield out
    shutil.rmtree(out, ignore_errors=True)


@pytest.mark.slow
def test_a_real_run_gets_a_report_that_renders(
    real_run: Path, tmp_path: Path, artifacts_dir: Path
) -> None:
    summary = json.loads((real_run / "summary.json").read_text())
    metrics = analyze_run(real_run)
    assert metrics.programs == summary["programs"]["total"] <= 40
    assert metrics.max_depth == summary["tree"]["max_depth"]
    assert metrics.crashed == summary["programs"]["by_status"].get("crashed", 0)
    assert metrics.paperclips == summary["outcome"]["paperclips"]
    for cap, denied in metrics.denials_by_cap.items():
        if cap in summary["caps"]:
            assert summary["caps"][cap]["denied"] == denied, cap
    if (real_run / "traces.jsonl").is_file():
        traced = analyze_trace(real_run / "traces.jsonl")
        for field in ("programs", "max_depth", "mean_branching", "leaves", "crashed"):
            assert getattr(traced, field) == getattr(metrics, field), field
    page = write_report(real_run, metrics=metrics)
    assert not EXTERNAL.search(page.read_text())
    if CHROMIUM.exists():
        rendered_dom(page, tmp_path)
        screenshot(page, tmp_path, artifacts_dir / "report-paperclips.png")


def test_each_detector_count_shows_its_blind_validity(run_dir: Path) -> None:
    """Beside every count a detector makes, the page shows that detector's blind precision and
    recall (from the one table, `BLIND`), marked when either is below the floor; counts that
    no detector makes carry none."""
    html = write_report(run_dir).read_text()
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r'<td class="metric">(\w+)</td>.*?(<td class="validity.*?</td>)', html)
    }
    shown = {
        "quines": "quine",
        "meta_tasks": "meta_task",
        "escape_attempts": "escape",
        "crashed_denied": "crash:denied",
    }
    for field, detector in shown.items():
        v = BLIND[detector]
        assert f"P {v.precision:.2f} · R {v.recall:.2f}" in rows[field], field
        assert ("below-floor" in rows[field]) is (min(v.precision, v.recall) < VALIDITY_FLOOR)
    assert rows["programs"] == '<td class="validity"></td>'
    assert "(below 0.9)" in html or all(min(v.precision, v.recall) >= 0.9 for v in BLIND.values())

"""ostoolkit's markdown as a GitHub job summary shows it, in a real chromium.

Real runs of the installed entry point write markdown (measure-switch, report, compare of two
reports, connections --real); tests/browser/render.mjs turns it into HTML with GitHub's own
parser (cmark-gfm), renders each mermaid chart with mermaid 10.9 and 11 on a light and a dark
page of a job summary's 872 px column, and reports what a reader sees. Each chart must parse
and show bars or lines that are not the background's colour; each table's verdict column (or
its last) must be visible without scrolling the table sideways. The markdown, the pages, their
screenshots and the findings stay in build/browser/ to look at. `make browser` installs
chromium, cmark-gfm and tests/browser's node packages; without them this skips (fails in CI).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dbservers
import pytest
from harness.leftovers import MARKER_VAR
from harness.paths import ENTRY, REPO
from harness.runs import Run, marked_env, run_marked

from ostoolkit.connections.real.servers import KINDS, check_installed
from ostoolkit.errors import InvalidRequest

BROWSER = REPO / "tests" / "browser"
RENDER = BROWSER / "render.mjs"
NODE_PACKAGES = ("playwright-core", "mermaid10", "mermaid11")
OUT = REPO / "build" / "browser"  # what an engineer opens: markdown, pages, screenshots
NODE_MAJOR = 20  # playwright-core's engines
# Each command's bound; the module's own (pytest-timeout) bounds their sum.
RUN_TIMEOUT_S = 120.0
CONNECTIONS_TIMEOUT_S = 240.0
RENDER_TIMEOUT_S = 240.0
STOP_GRACE_S = 15.0
# The labels GitHub's action (action/run.sh) gives compare's columns.
COMPARE_LABELS = ("saved", "this run")
SOURCES = ("switch", "report", "compare", "fleet", "connections")

pytestmark = pytest.mark.timeout(600)


@dataclass
class Source:
    """One markdown source: its file, or why there is none (a failure or a skip)."""

    name: str
    markdown: Path | None = None
    problem: str | None = None
    skip: str | None = None


@dataclass
class Rendering:
    """Every source and render.mjs's findings over all of them (None when it failed)."""

    sources: dict[str, Source]
    findings: dict[str, Any] | None
    problem: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def run_bounded(argv: list[str], work: Path, env: dict[str, str], timeout: float) -> Run:
    """Run ``argv`` through the harness's one bounded runner (its own session, killed with
    every marked process on timeout), a leftover named as its failure."""
    marker = env[MARKER_VAR]
    ran = run_marked(argv, env=env, marker=marker, timeout=timeout, cwd=work)
    if ran.leftovers and ran.returncode == 0:
        ran.returncode = None  # a leftover is a failure of the run
    return ran


def command_env(work: Path) -> dict[str, str]:
    """The environment of every command: scratch in ``work``, and no job summary to append to
    (GITHUB_STEP_SUMMARY would make ostoolkit write the markdown there too)."""
    _, marked = marked_env(TMPDIR=str(work))
    return {k: v for k, v in marked.items() if k != "GITHUB_STEP_SUMMARY"}


def missing_tool() -> str | None:
    """Why the browser rendering cannot run here, or None."""
    for tool in ("chromium", "cmark-gfm", "node"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    done = subprocess.run(
        ["node", "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    major = re.match(r"v(\d+)\.", done.stdout)
    if not major or int(major.group(1)) < NODE_MAJOR:
        return f"node {done.stdout.strip() or '?'} is older than {NODE_MAJOR}"
    for package in NODE_PACKAGES:
        if not (BROWSER / "node_modules" / package / "package.json").exists():
            return f"{BROWSER / 'node_modules' / package} is missing"
    return None


def missing_servers() -> str | None:
    """Why connections --real cannot start its servers here, or None."""
    for kind in KINDS:
        try:
            check_installed(kind)
        except InvalidRequest as err:
            return str(err)
    return None


def produce(work: Path, env: dict[str, str]) -> tuple[dict[str, Source], dict[str, float]]:
    """Every source's markdown from real runs of the entry point, written to OUT."""
    entry = str(ENTRY)
    sources = {name: Source(name) for name in SOURCES}
    seconds: dict[str, float] = {}

    def markdown(name: str, argv: list[str], timeout: float = RUN_TIMEOUT_S) -> bool:
        start = time.monotonic()
        ran = run_bounded([entry, *argv], work, env, timeout)
        seconds[name] = seconds.get(name, 0.0) + time.monotonic() - start
        if ran.returncode != 0 or ran.timed_out or not ran.stdout.strip():
            sources[name].problem = f"no markdown for {name}: {ran.describe()}"
            return False
        path = OUT / f"{name}.md"
        path.write_text(ran.stdout, encoding="utf-8")
        sources[name].markdown = path
        return True

    markdown(
        "switch",
        ["measure-switch", "--quick", "--tasks", "2,8", "--sizes", "0,64", "--format", "markdown"],
    )
    report = ["report", "--quick", "--only", "switch,states", "--format", "markdown"]
    if markdown("report", [*report, "--json", str(work / "a.json")]):
        start = time.monotonic()
        second = run_bounded(
            [entry, *report, "--json", str(work / "b.json")], work, env, RUN_TIMEOUT_S
        )
        seconds["report"] += time.monotonic() - start
        if second.returncode != 0 or second.timed_out:
            sources["compare"].problem = f"the second report failed: {second.describe()}"
    if sources["report"].problem:
        sources["compare"].problem = "no reports to compare: the first report failed"
    if not sources["compare"].problem:
        labels = [arg for label in COMPARE_LABELS for arg in ("--label", label)]
        pair = [str(work / "a.json"), str(work / "b.json")]
        markdown("compare", ["compare", *pair, *labels, "--format", "markdown"])
        # the fleet view of the same two reports: its spread chart and tables
        markdown("fleet", ["compare", *pair, *labels, "--view", "fleet", "--format", "markdown"])
    else:
        sources["fleet"].problem = sources["compare"].problem
    absent = missing_servers()
    if absent:
        sources["connections"].skip = f"connections --real cannot run here: {absent}"
    else:
        argv = ["connections", "--real", "--quick", "--format", "markdown"]
        markdown("connections", argv, CONNECTIONS_TIMEOUT_S)
    return sources, seconds


@pytest.fixture(scope="module")
def rendering(tmp_path_factory: pytest.TempPathFactory) -> Rendering:
    """The real runs' markdown, rendered once by render.mjs for every test of the module."""
    absent = missing_tool()
    if absent:
        dbservers.skip_or_fail(
            f"{absent}: run `make browser` (renders ostoolkit's markdown into {OUT})"
        )
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    work = tmp_path_factory.mktemp("browser")
    env = command_env(work)
    sources, seconds = produce(work, env)
    files = [str(s.markdown) for s in sources.values() if s.markdown]
    if not files:
        return Rendering(sources, None, "no markdown to render", seconds)
    env["OSTOOLKIT_CHROMIUM"] = shutil.which("chromium") or "chromium"
    start = time.monotonic()
    ran = run_bounded(["node", str(RENDER), "--out", str(OUT), *files], work, env, RENDER_TIMEOUT_S)
    seconds["render"] = time.monotonic() - start
    if ran.returncode != 0 or ran.timed_out:
        return Rendering(sources, None, f"render.mjs failed: {ran.describe()}", seconds)
    findings = json.loads(ran.stdout)
    findings["seconds"] = seconds
    (OUT / "findings.json").write_text(json.dumps(findings, indent=1), encoding="utf-8")
    return Rendering(sources, findings, None, seconds)


def chart_problems(where: str, chart: dict[str, Any]) -> list[str]:
    """What is wrong with one rendered mermaid block, as lines naming it."""
    name = f"{where}: chart #{chart['index']} {chart.get('title')!r} ({chart['kind']})"
    if not chart["ok"]:
        return [f"{name}: mermaid error: {chart['error']}"]
    problems = []
    drawn = [b for b in chart["bars"] if b["width"] > 0 and b["height"] > 0]
    hidden: dict[tuple[str, str], int] = {}
    for bar in drawn:
        if bar["nearBackground"]:
            key = (bar["series"], bar["fill"])
            hidden[key] = hidden.get(key, 0) + 1
    background = chart["background"]
    for (series, fill), count in hidden.items():
        problems.append(
            f"{name}: {count} bar(s) of {series} filled {fill}, the background's colour "
            f"(page {background['page']}, chart {background['chart']})"
        )
    lines = [line for line in chart["lines"] if line["visible"]]
    # A line series of one point is a path of length 0: mermaid draws nothing for it.
    for series in sorted(
        {line["series"] for line in chart["lines"]} - {x["series"] for x in lines}
    ):
        drawn_as = [x for x in chart["lines"] if x["series"] == series]
        problems.append(f"{name}: line series {series} draws nothing visible: {drawn_as}")
    if not [b for b in drawn if not b["nearBackground"]] and not lines:
        problems.append(
            f"{name}: no visible mark: {len(chart['bars'])} bar rects "
            f"({len(drawn)} of non-zero size), {len(chart['lines'])} line paths "
            f"({json.dumps(chart['lines'])})"
        )
    return problems


def table_problems(where: str, table: dict[str, Any]) -> list[str]:
    """A table whose verdict (or last) column needs a sideways scroll, as a line naming it."""
    if table["fits"]:
        return []
    return [
        f"{where}: table #{table['index']} {table['headers']}: its {table['chosenBy']} column "
        f"{table['columnHeader']!r} spans {table['columnLeft']}-{table['columnRight']} px but "
        f"only {table['visibleWidth']} px are visible (table {table['scrollWidth']} px wide, "
        f"{table['hiddenPx']} px hidden; column widths {table['columnWidths']} px)"
    ]


def render_problems(file: str, render: dict[str, Any]) -> list[str]:
    """Every problem of one file in one mermaid version and theme."""
    where = f"{file} mermaid {render['mermaid']} {render['theme']}"
    problems = [f"{where}: page error: {err}" for err in render["pageErrors"]]
    if not render["loaded"]:
        problems.append(f"{where}: mermaid did not load")
    for chart in render["charts"]:
        problems += chart_problems(where, chart)
    for table in render["tables"]:
        problems += table_problems(where, table)
    return problems


def missed(file: str, text: str, renders: list[dict[str, Any]]) -> list[str]:
    """Charts or tables of the markdown that a page lacks (cmark-gfm or mermaid lost them)."""
    blocks = len(re.findall(r"^```mermaid$", text, flags=re.M))
    tables = len(re.findall(r"^\|(?: *:?-+:? *\|)+$", text, flags=re.M))
    problems = []
    for render in renders:
        where = f"{file} mermaid {render['mermaid']} {render['theme']}"
        if len(render["charts"]) != blocks:
            problems.append(f"{where}: {len(render['charts'])} charts for {blocks} mermaid blocks")
        if len(render["tables"]) != tables:
            problems.append(f"{where}: {len(render['tables'])} tables for {tables} in the markdown")
    return problems


def findings_of(rendering: Rendering, name: str) -> dict[str, Any]:
    """render.mjs's findings for one source, or the skip/failure that stands for them."""
    source = rendering.sources[name]
    if source.skip:
        dbservers.skip_or_fail(source.skip)
    if source.problem:
        pytest.fail(source.problem, pytrace=False)
    if rendering.findings is None:
        pytest.fail(f"{rendering.problem} (output in {OUT})", pytrace=False)
    assert source.markdown is not None
    found: dict[str, Any] = rendering.findings["files"][source.markdown.name]
    return found


@pytest.mark.parametrize("name", SOURCES)
def test_markdown_renders_as_on_github(rendering: Rendering, name: str) -> None:
    """Every chart parses and shows marks, every verdict column fits: mermaid 10.9 and 11, both
    themes."""
    found = findings_of(rendering, name)
    assert len(found["renders"]) == 4, [r["mermaid"] + r["theme"] for r in found["renders"]]
    file = f"{name}.md"
    problems = [line for render in found["renders"] for line in render_problems(file, render)]
    problems += missed(file, (OUT / file).read_text(encoding="utf-8"), found["renders"])
    shots = "\n".join(f"  {r['screenshot']}" for r in found["renders"])
    assert not problems, (
        f"{len(problems)} problem(s) in {file} as GitHub would show it "
        f"(screenshots in {OUT}):\n" + "\n".join(problems) + f"\nscreenshots:\n{shots}"
    )

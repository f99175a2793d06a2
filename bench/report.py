"""Results of a run, the terminal table and the Markdown report (``docs/benchmarks.md``).

`METRICS` names every metric a workload can return, with its unit and direction; `TARGETS`
are the goals moorage is held to, as ratios moorage/distribution or absolute limits.
`render_table` prints the comparison; `render_markdown` writes the whole report: machine,
versions, command, targets with pass/fail, results, per-workload CPU, failures and method.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

CLIENT_BOUND = 0.9  # client CPU / wall above this: the client, not the server, may be the limit
OTHERS_BUSY = 0.25  # CPU of processes outside the benchmark / wall above this: figures are noisy


@dataclass(frozen=True)
class Metric:
    """A metric's key (as workloads return it), label, unit and which direction is better."""

    key: str
    label: str
    unit: str
    higher_is_better: bool | None  # None: context for another figure, not compared
    digits: int = 1


METRICS = [
    Metric("push_mono_mbps", "blob push {blob_mib} MiB, monolithic (POST, PUT)", "MB/s", True),
    Metric(
        "push_chunked_mbps",
        "blob push {blob_mib} MiB, {chunk_mib} MiB PATCH chunks, PUT",
        "MB/s",
        True,
    ),
    Metric("pull_1_mbps", "blob pull {blob_mib} MiB, 1 client", "MB/s", True),
    Metric("pull_n_mbps", "blob pull {blob_mib} MiB, {pull_clients} clients, total", "MB/s", True),
    Metric(
        "manifest_get_rps", "manifest GET by tag, {manifest_connections} conns", "req/s", True, 0
    ),
    Metric("manifest_get_p50_ms", "manifest GET p50 latency", "ms", False, 2),
    Metric("manifest_get_p99_ms", "manifest GET p99 latency", "ms", False, 2),
    Metric(
        "manifest_head_rps", "manifest HEAD by tag, {manifest_connections} conns", "req/s", True, 0
    ),
    Metric("manifest_head_p50_ms", "manifest HEAD p50 latency", "ms", False, 2),
    Metric("manifest_head_p99_ms", "manifest HEAD p99 latency", "ms", False, 2),
    Metric("manifest_cpu_ms_per_request", "server CPU per manifest GET/HEAD", "ms", False, 2),
    Metric("layers_push_s", "image push, {layers} layers of {layer_bytes} B", "s", False, 2),
    Metric("tag_put_rps", "manifest PUT under a new tag ({tags} tags)", "req/s", True, 0),
    Metric("tags_list_full_s", "tags/list of {tags} tags, one request", "s", False, 4),
    Metric("tags_list_paged_s", "tags/list of {tags} tags, n={tag_page}, all pages", "s", False, 4),
    Metric("tags_list_paged_pages", "tags/list, pages in that walk", "pages", None, 0),
    Metric("catalog_setup_pushes_per_s", "image push by blob mount ({repos} repos)", "img/s", True),
    Metric("catalog_rps", "_catalog?n={catalog_page}", "req/s", True, 0),
    Metric(
        "catalog_page_entries", "_catalog?n={catalog_page}, names per response", "names", None, 0
    ),
    Metric("server_peak_rss_mib", "server peak RSS (VmHWM, whole run)", "MiB", False),
    Metric("server_cpu_s", "server CPU time (utime+stime, whole run)", "s", False, 2),
]
METRIC_BY_KEY = {m.key: m for m in METRICS}


@dataclass(frozen=True)
class Target:
    """A goal: `check(value)` on the ratio moorage/distribution, or on moorage's own value."""

    key: str
    goal: str
    on_ratio: bool
    check: Callable[[float], bool]


TARGETS = [
    Target("pull_1_mbps", "ratio >= 1.2", True, lambda r: r >= 1.2),
    Target("pull_n_mbps", "ratio >= 1.2", True, lambda r: r >= 1.2),
    Target("push_mono_mbps", "ratio >= 1.2", True, lambda r: r >= 1.2),
    Target("push_chunked_mbps", "ratio >= 1.2", True, lambda r: r >= 1.2),
    Target("manifest_get_rps", "ratio >= 1.0", True, lambda r: r >= 1.0),
    Target("layers_push_s", "time ratio <= 1.0", True, lambda r: r <= 1.0),
    Target("server_peak_rss_mib", "moorage <= 128 MiB", False, lambda v: v <= 128),
]


@dataclass
class WorkloadRun:
    """One workload on one registry: its metrics or its error, and the CPU it cost."""

    name: str
    metrics: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    load_tool_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    other_cpu_s: float = 0.0
    error: str | None = None


@dataclass
class RegistryRun:
    """Everything measured on one registry in a run."""

    name: str
    version: str
    command: list[str] = field(default_factory=list)
    workloads: list[WorkloadRun] = field(default_factory=list)
    error: str | None = None
    busy_at_start: float = 0.0

    def value(self, key: str) -> float | None:
        """Return a metric's value, or None when it was not measured."""
        for w in self.workloads:
            if key in w.metrics:
                return w.metrics[key]
        return None


@dataclass
class Run:
    """A whole benchmark run: its command, parameters (as text) and per-registry results."""

    command: str
    params: dict[str, object]
    registries: list[RegistryRun]
    wall_s: float = 0.0
    started: datetime = field(default_factory=lambda: datetime.now(UTC))  # when the run began

    def get(self, name: str) -> RegistryRun | None:
        """Return the results of registry `name`, if it was part of the run."""
        return next((r for r in self.registries if r.name == name), None)


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ratio(run: Run, key: str) -> float | None:
    m, d = run.get("moorage"), run.get("distribution")
    mv = m.value(key) if m else None
    dv = d.value(key) if d else None
    return mv / dv if mv is not None and dv else None


def result_rows(run: Run) -> list[list[str]]:
    """Rows of the results table: metric, unit, better, one column per registry, ratio."""
    rows = []
    for metric in METRICS:
        values = [r.value(metric.key) for r in run.registries]
        if all(v is None for v in values):
            continue
        ratio = _ratio(run, metric.key) if metric.higher_is_better is not None else None
        better = {True: "higher", False: "lower", None: "-"}[metric.higher_is_better]
        rows.append(
            [metric.label.format(**run.params), metric.unit, better]
            + [_fmt(v, metric.digits) for v in values]
            + ([f"{ratio:.2f}x" if ratio is not None else "n/a"] if len(run.registries) > 1 else [])
        )
    return rows


def target_rows(run: Run) -> list[list[str]]:
    """Rows of the targets table: metric, goal, measured value, pass/fail (or not measured)."""
    rows = []
    moorage = run.get("moorage")
    for t in TARGETS:
        value = _ratio(run, t.key) if t.on_ratio else (moorage.value(t.key) if moorage else None)
        shown = "n/a" if value is None else (f"{value:.2f}x" if t.on_ratio else f"{value:.1f}")
        verdict = "not measured" if value is None else ("PASS" if t.check(value) else "FAIL")
        rows.append([METRIC_BY_KEY[t.key].label.format(**run.params), t.goal, shown, verdict])
    return rows


def cpu_rows(run: Run) -> list[list[str]]:
    """Rows of the per-workload table: wall time and CPU of server, client, load tool, others."""
    rows = []
    for r in run.registries:
        for w in r.workloads:
            if not w.wall_s:
                continue  # the whole-run totals, which have no wall time of their own

            def share(cpu_s: float, wall_s: float = w.wall_s) -> str:
                return f"{cpu_s / wall_s:.0%}"

            notes = []
            if w.client_cpu_s / w.wall_s >= CLIENT_BOUND:
                notes.append("client >= 90% of a core")
            if w.other_cpu_s / w.wall_s >= OTHERS_BUSY:
                notes.append("other processes busy")
            if w.error:
                notes.append("failed")
            tool = share(w.load_tool_cpu_s) if w.load_tool_cpu_s else "-"
            rows.append(
                [
                    r.name,
                    w.name,
                    f"{w.wall_s:.1f}",
                    share(w.server_cpu_s),
                    share(w.client_cpu_s),
                    tool,
                    share(w.other_cpu_s),
                    "; ".join(notes),
                ]
            )
    return rows


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
        + [fmt.format(*row) for row in rows]
    )


def _result_header(run: Run) -> list[str]:
    ratio = ["moorage/distribution"] if len(run.registries) > 1 else []
    return ["metric", "unit", "better", *(r.name for r in run.registries), *ratio]


def render_table(run: Run) -> str:
    """Return the plain-text results, targets and CPU tables for the terminal."""
    parts = [_table(_result_header(run), result_rows(run), markdown=False)]
    if run.get("moorage"):
        parts.append(_table(["target", "goal", "measured", "verdict"], target_rows(run), False))
    parts.append(_table(CPU_HEADER, cpu_rows(run), markdown=False))
    parts += [
        f"{r.name}: {w.name}: {w.error}" for r in run.registries for w in r.workloads if w.error
    ]
    parts += [f"{r.name}: {r.error}" for r in run.registries if r.error]
    return "\n\n".join(parts)


CPU_HEADER = ["registry", "workload", "wall s", "server", "client", "wrk/ab", "others", "note"]


def _sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "not installed"


def machine_lines() -> list[str]:
    """Describe the machine and the client-side tool versions, one Markdown bullet each."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    mem_kib = next(int(ln.split()[1]) for ln in meminfo if ln.startswith("MemTotal"))
    wrk = _sh(["wrk", "--version"]).split(" [")[0] or "not installed"
    ab = re.search(r"Version (\S+)", _sh(["ab", "-V"]))
    return [
        f"- CPU: {cpu}, nproc {os.cpu_count()}, memory {mem_kib / 2**20:.1f} GiB",
        f"- kernel: {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, aiohttp {version('aiohttp')}",
        f"- manifest load: {wrk}; {f'ab {ab.group(1)}' if ab else 'ab not installed'}",
    ]


METHOD = """\
## Method

- Both registries run on this machine at the same time, each started by the benchmark on a
  free 127.0.0.1 port with a fresh, empty data directory, and stopped with SIGTERM at the end.
  Each workload runs on one registry and then on the other, alternating which goes first, so
  that load from other work on a shared machine falls on both alike; the registry not being
  measured sits idle. Every workload uses the same client code (`bench/oci_client.py`,
  aiohttp, one event loop with uvloop when installed) against both.
- distribution runs with the filesystem driver, `storage.delete.enabled: true`, log level
  `warn` and its access log off; moorage with `--create-on-push '*' --emulator --log-level warning`
  (no line per request either) and otherwise its defaults (SQLite metadata, filesystem blobs).
- MB/s means 10^6 bytes per second. Large blobs are random data generated before the clock
  starts; each push uses a blob the registry has never seen. Push and pull figures are the
  median of the repeats given in the parameters. Before the timed pulls, one untimed pull checks
  the digest and warms the page cache, so both registries serve from memory.
- Ratios are moorage/distribution. For req/s and MB/s above 1.0 is better for moorage; for
  seconds, milliseconds, MiB and CPU seconds below 1.0 is better for moorage.
- Peak RSS is VmHWM from `/proc/<pid>/status` read just before SIGTERM, summed over the
  server's process tree (exact for one process, an upper bound for several). CPU time is
  utime+stime (+cutime+cstime) from `/proc/<pid>/stat` over the whole run, startup included.
- The machine has 2 cores shared by the client and the server (and by anything else running
  on it), so a CPU-hungry client takes cycles from the server. The CPU table shows every side's
  share; a client at or above 90% of a core means that figure is a lower bound on what the
  server could do.
- Manifest GET load comes from wrk (C, HTTP/1.1, 2 threads, 32 connections, Lua script
  `bench/manifest.lua`) and HEAD load from ab (C, 1 thread, 32 keep-alive connections): they
  spend less CPU per request than the Python client, which leaves more of the 2 cores to the
  server, and wrk 4.1 waits for a body after a HEAD response, so it cannot drive HEAD. To check
  that the client is not the limit, run `--only manifest --http-load aiohttp`: the same load
  then comes from this process and its CPU shows in the client column. Blob pushes and pulls,
  the layer push, tags and catalog always use the aiohttp client; see its column above.
- A row of the CPU table marked "other processes busy" ran while work outside the benchmark
  used at least a quarter of a core; its figures are lower than a quiet machine would give.
  Server CPU per manifest request is the figure least moved by such load.
"""


def notes(run: Run) -> list[str]:
    """Observations a reader needs to read the results table right, as Markdown bullets."""
    out = []
    for r in run.registries:
        pages = r.value("tags_list_paged_pages")
        if pages == 1:
            out.append(
                f"- {r.name} answered `tags/list?n=...` with every tag in one response "
                "(it ignores `n`), so its paged figure is another full list."
            )
        if r.busy_at_start >= 0.3:
            out.append(f"- Other processes used {r.busy_at_start:.1f} CPUs when {r.name} started.")
    return out


def render_markdown(run: Run) -> str:
    """Return the whole ``docs/benchmarks.md`` report for `run`."""
    versions = [
        f"- {r.name}: {r.version}" + (f", run as `{shlex.join(r.command)}`" if r.command else "")
        for r in run.registries
    ]
    out = [
        "# Benchmarks: moorage and distribution",
        "",
        "Generated by `bench/` (see Method). Do not edit by hand: run the command below again.",
        "",
        f"Run at {run.started:%Y-%m-%d %H:%M} UTC, taking {run.wall_s / 60:.1f} minutes, with:",
        "",
        "```sh",
        run.command,
        "```",
        "",
        "Parameters: " + ", ".join(f"{k}={v}" for k, v in run.params.items()) + ".",
        "",
        "## Machine and versions",
        "",
        *machine_lines(),
        *versions,
        "",
    ]
    if run.get("moorage"):
        out += [
            "## Targets",
            "",
            _table(["metric", "goal", "measured", "verdict"], target_rows(run), markdown=True),
            "",
        ]
    else:
        out += ["## Targets", "", "moorage was not part of this run; no target was checked.", ""]
    out += ["## Results", "", _table(_result_header(run), result_rows(run), markdown=True), ""]
    out += [*notes(run), ""]
    out += [
        "## CPU per workload",
        "",
        "CPU seconds as a share of one core over each workload's wall time (setup included):",
        "the server's process tree, this client process, the wrk/ab children, and everything",
        "else on the machine (from `/proc/stat`, so kernel work such as page-cache writeback",
        "of the server's files lands there too). The machine has 2 cores.",
        "",
        _table(CPU_HEADER, cpu_rows(run), markdown=True),
        "",
    ]
    failures = [(f"{r.name}, {w.name}", w.error) for r in run.registries for w in r.workloads]
    failures += [(r.name, r.error) for r in run.registries]
    if any(error for _, error in failures):
        out += [
            "## Failures",
            "",
            "Each failed request with its status and body, then the end of",
            "the server's log.",
            "",
        ]
        for where, error in failures:
            if error:
                out += [f"### {where}", "", "```text", error.strip(), "```", ""]
    out += [METHOD]
    return "\n".join(out)

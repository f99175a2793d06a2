"""Command line of the benchmark: ``python -m bench [options]`` from the repository root.

Start every registry in ``--registries`` (`bench.servers`), then run each selected workload
(`bench.workloads`) on one registry after the other, alternating which goes first, so that
load from anything else on a shared machine falls on both alike. Each workload's metrics or
error are recorded with the server's, the client's and everyone else's CPU. At the end, read
each server's peak RSS and CPU time and stop it; print the tables and, with ``--out``, write
the Markdown report.

A workload that fails is recorded with the request and response that failed and the run goes
on; the exit status is 1 when anything failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench.oci_client import OciClient
from bench.report import RegistryRun, Run, WorkloadRun, render_markdown, render_table
from bench.sections import marked_sections
from bench.servers import (
    SERVERS,
    RunningServer,
    ServerError,
    start_server,
    stop_on_sigterm,
    system_busy_s,
    wait_for_quiet,
)
from bench.workloads import QUICK, WORKLOADS, BlobFiles, Context, Params


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _cpu() -> tuple[float, float]:
    """Return (this process's CPU seconds, CPU seconds of its reaped children such as wrk)."""
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


def _servers_cpu(servers: dict[str, RunningServer]) -> dict[str, float]:
    cpu = {}
    for name, server in servers.items():
        try:
            cpu[name] = server.usage().cpu_s
        except ServerError:
            cpu[name] = 0.0
    return cpu


async def _run_one(
    name: str, ctx: Context, server: RunningServer, servers: dict[str, RunningServer]
) -> WorkloadRun:
    """Run workload `name` on `server`, measuring its CPU, ours, and everyone else's."""
    print(f"  {server.spec.name}: {name} ...", flush=True, file=sys.stderr)
    run = WorkloadRun(name)
    servers_before = _servers_cpu(servers)
    cpu_before, tool_before = _cpu()
    busy_before = system_busy_s()
    start = time.perf_counter()
    try:
        run.metrics = await WORKLOADS[name](ctx)
    except Exception as e:
        run.error = f"{type(e).__name__}: {e}" + server.log(800)
    run.wall_s = time.perf_counter() - start
    cpu_after, tool_after = _cpu()
    busy = system_busy_s() - busy_before
    servers_after = _servers_cpu(servers)
    run.client_cpu_s, run.load_tool_cpu_s = cpu_after - cpu_before, tool_after - tool_before
    run.server_cpu_s = servers_after[server.spec.name] - servers_before[server.spec.name]
    # The other registry idles meanwhile; its CPU is neither this server's nor "others".
    all_servers = sum(servers_after.values()) - sum(servers_before.values())
    run.other_cpu_s = max(0.0, busy - run.client_cpu_s - run.load_tool_cpu_s - all_servers)
    requests = run.metrics.pop("requests", 0)
    if requests:
        run.metrics[f"{name}_cpu_ms_per_request"] = run.server_cpu_s * 1000 / requests
    return run


async def _run_all(
    servers: dict[str, RunningServer],
    results: dict[str, RegistryRun],
    params: Params,
    blobs: BlobFiles,
    names: list[str],
) -> None:
    """Run each workload on every live server in turn, alternating which goes first."""
    async with contextlib.AsyncExitStack() as stack:
        contexts = {}
        for name, server in servers.items():
            session = await stack.enter_async_context(
                aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=64, limit_per_host=64),
                    timeout=aiohttp.ClientTimeout(total=None, sock_read=300),
                    read_bufsize=1 << 22,
                    auto_decompress=False,
                )
            )
            contexts[name] = Context(OciClient(session, server.base_url), params, blobs)
        for i, workload in enumerate(names):
            order = list(servers) if i % 2 == 0 else list(reversed(servers))
            for name in order:
                if results[name].error:
                    continue  # it died earlier; its error says how
                run = await _run_one(workload, contexts[name], servers[name], servers)
                results[name].workloads.append(run)
                if servers[name].process.poll() is not None:
                    results[
                        name
                    ].error = f"exited ({servers[name].process.returncode}) during {workload}"


def bench_registries(
    registries: list[str], params: Params, blobs: BlobFiles, names: list[str], quiet_wait_s: float
) -> list[RegistryRun]:
    """Start every registry, run the workloads interleaved, measure and stop them all."""
    results = {name: RegistryRun(name, SERVERS[name].version()) for name in registries}
    busy = wait_for_quiet(quiet_wait_s)
    servers: dict[str, RunningServer] = {}
    for name in registries:
        results[name].busy_at_start = busy
        try:
            servers[name] = start_server(SERVERS[name])
            results[name].command = servers[name].argv
        except (ServerError, OSError) as e:
            results[name].error = str(e)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_run_all(servers, results, params, blobs, names))
        for name, server in servers.items():
            if results[name].error:
                continue
            usage = server.usage()
            totals = {
                "server_peak_rss_mib": usage.peak_rss_bytes / 2**20,
                "server_cpu_s": usage.cpu_s,
            }
            results[name].workloads.append(WorkloadRun("whole run", totals))
    finally:
        for name, server in servers.items():
            code = server.stop()
            if code not in (0, -15) and not results[name].error:
                results[name].error = f"exited with status {code} after SIGTERM"
    return [results[name] for name in registries]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see ``python -m bench --help``)."""
    ap = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark moorage and distribution side by side on the same OCI workloads.",
    )
    ap.add_argument(
        "--registries",
        default="moorage,distribution",
        help="comma-separated; workloads run on each in turn (default: %(default)s)",
    )
    ap.add_argument("--only", help=f"comma-separated workloads out of {','.join(WORKLOADS)}")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small smoke run (16 MiB blobs, 20 layers, 500 tags, 50 repositories)",
    )
    ap.add_argument("--size-mib", type=int, help="size of the large blobs (default 256, quick 16)")
    ap.add_argument(
        "--http-load",
        choices=["wrk-ab", "aiohttp"],
        help="manifest GET/HEAD load: wrk for GET and ab for HEAD, or this process "
        "(default: wrk-ab when both are installed)",
    )
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before starting, wait up to this many seconds for other work on the machine "
        "to use < 0.3 CPU (default: %(default)s)",
    )
    ap.add_argument("--out", type=Path, help="write the Markdown report here")
    ap.add_argument(
        "--workdir", type=Path, help="where the random blob files go (default: a temp dir)"
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 when every workload succeeded on every registry."""
    args = parse_args(argv)
    stop_on_sigterm()
    registries = [r.strip() for r in args.registries.split(",") if r.strip()]
    names = [n.strip() for n in args.only.split(",")] if args.only else list(WORKLOADS)
    unknown = [r for r in registries if r not in SERVERS] + [n for n in names if n not in WORKLOADS]
    if unknown:
        print(f"unknown registry or workload: {', '.join(unknown)}", file=sys.stderr)
        return 2
    params = QUICK if args.quick else Params()
    tools = shutil.which("wrk") and shutil.which("ab")
    load = args.http_load or ("wrk-ab" if tools else "aiohttp")
    params = dataclasses.replace(params, http_load=load, blob_mib=args.size_mib or params.blob_mib)
    workdir = Path(tempfile.mkdtemp(prefix="bench-blobs-", dir=args.workdir))
    blobs = BlobFiles(workdir, params.blob_mib << 20)
    command = "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    started_at, started = datetime.now(UTC), time.perf_counter()
    try:
        print(f"writing random blobs to {workdir} ...", file=sys.stderr)
        blobs.prepare(names, params)
        results = bench_registries(registries, params, blobs, names, args.quiet_wait)
    finally:
        blobs.cleanup()
    wall_s = time.perf_counter() - started
    run = Run(command, dataclasses.asdict(params), results, wall_s, started_at)
    print(render_table(run))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        kept = marked_sections(args.out)  # the maintenance benchmarks' sections
        args.out.write_text("\n".join([render_markdown(run).rstrip() + "\n", *kept]))
        print(f"\nwrote {args.out}", file=sys.stderr)
    failed = any(r.error or any(w.error for w in r.workloads) for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

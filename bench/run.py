"""Command line of the benchmark: ``python -m bench [options]`` from the repository root.

For each registry in ``--registries`` (in that order): start it (`bench.servers`), run the
selected workloads (`bench.workloads`) through one aiohttp session, record each workload's
metrics or error together with the server's and the client's CPU, read the server's peak RSS
and CPU time, stop it. Then print the tables and, with ``--out``, write the Markdown report.

A workload that fails is recorded with the request and response that failed and the run goes
on; the exit status is 1 when anything failed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from bench.oci_client import OciClient
from bench.report import RegistryRun, Run, WorkloadRun, render_markdown, render_table
from bench.servers import (
    SERVERS,
    RunningServer,
    ServerError,
    start_server,
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


async def _run_workloads(
    server: RunningServer, params: Params, blobs: BlobFiles, names: list[str]
) -> list[WorkloadRun]:
    connector = aiohttp.TCPConnector(limit=64, limit_per_host=64)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
    runs = []
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, read_bufsize=1 << 22, auto_decompress=False
    ) as session:
        ctx = Context(OciClient(session, server.base_url), params, blobs)
        for name in names:
            print(f"  {server.spec.name}: {name} ...", flush=True, file=sys.stderr)
            run = WorkloadRun(name)
            server_before = server.usage().cpu_s
            cpu_before, tool_before = _cpu()
            busy_before = system_busy_s()
            start = time.perf_counter()
            try:
                run.metrics = await WORKLOADS[name](ctx)
            except Exception as e:
                run.error = f"{type(e).__name__}: {e}"
            run.wall_s = time.perf_counter() - start
            cpu_after, tool_after = _cpu()
            busy = system_busy_s() - busy_before
            run.client_cpu_s, run.load_tool_cpu_s = cpu_after - cpu_before, tool_after - tool_before
            try:
                run.server_cpu_s = server.usage().cpu_s - server_before
                mine = run.client_cpu_s + run.load_tool_cpu_s + run.server_cpu_s
                run.other_cpu_s = max(0.0, busy - mine)
            except ServerError as e:
                run.error = f"{run.error or ''} {e}".strip()
                runs.append(run)
                break
            if run.error:
                run.error += server.log(800)
            runs.append(run)
    return runs


def bench_registry(
    name: str, params: Params, blobs: BlobFiles, names: list[str], quiet_wait_s: float
) -> RegistryRun:
    """Start registry `name`, run the workloads `names` on it, measure it, stop it."""
    spec = SERVERS[name]
    result = RegistryRun(name, spec.version())
    result.busy_at_start = wait_for_quiet(quiet_wait_s)
    try:
        server = start_server(spec)
    except (ServerError, OSError) as e:
        result.error = str(e)
        return result
    result.command = server.process.args  # type: ignore[assignment]
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            result.workloads = runner.run(_run_workloads(server, params, blobs, names))
        usage = server.usage()
        total = WorkloadRun(
            "whole run",
            {"server_peak_rss_mib": usage.peak_rss_bytes / 2**20, "server_cpu_s": usage.cpu_s},
        )
        result.workloads.append(total)
    except ServerError as e:
        result.error = str(e)
    finally:
        code = server.stop()
        if code not in (0, -15) and not result.error:
            result.error = f"exited with status {code} after SIGTERM"
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see ``python -m bench --help``)."""
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument(
        "--registries",
        default="moorage,distribution",
        help="comma-separated, run in this order (default: %(default)s)",
    )
    ap.add_argument("--only", help=f"comma-separated workloads out of {','.join(WORKLOADS)}")
    ap.add_argument("--quick", action="store_true", help="small smoke run (16 MiB blobs, ...)")
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
        help="before each registry, wait up to this many seconds for other work on the "
        "machine to use < 0.3 CPU (default: %(default)s)",
    )
    ap.add_argument("--out", type=Path, help="write the Markdown report here")
    ap.add_argument(
        "--workdir", type=Path, help="where the random blob files go (default: a temp dir)"
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 when every workload succeeded on every registry."""
    args = parse_args(argv)
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
    try:
        print(f"writing random blobs to {workdir} ...", file=sys.stderr)
        blobs.prepare(names, params)
        results = [bench_registry(r, params, blobs, names, args.quiet_wait) for r in registries]
    finally:
        blobs.cleanup()
    run = Run(command, dataclasses.asdict(params), results)
    print(render_table(run))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(render_markdown(run))
        print(f"\nwrote {args.out}", file=sys.stderr)
    failed = any(r.error or any(w.error for w in r.workloads) for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

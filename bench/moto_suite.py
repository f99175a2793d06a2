"""Run moto's own ECR test suite (a third-party boto3 suite written for moto's server mode)
against ``moorage serve --emulator``, changing only ``TEST_SERVER_MODE_ENDPOINT``.

    python -m bench.moto_suite [--moto-version 5.2.6] [--keep DIR]

It downloads moto's source distribution from the package index (its tests are in it), starts
a fresh emulator on a free port with the AWS-shaped registry host that moto's tests assert
(``{registry_id}.dkr.ecr.{region}.amazonaws.com``), runs ``tests/test_ecr`` with
``TEST_SERVER_MODE=true`` and prints pytest's summary and the failed tests. The installed
moto (a test dependency) must be able to run that version's tests; freezegun is needed too
(``pip install freezegun``). What each remaining failure means is in the emulator issue's
closing note: most assert moto's canned values, or behaviour AWS does not have.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.servers import free_port

# The registry host moto's tests assert repositoryUri and proxyEndpoint against.
HOST = "{registry_id}.dkr.ecr.{region}.amazonaws.com"


def _download(version: str, into: Path) -> Path:
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary"]
    subprocess.run([*pip, ":all:", f"moto=={version}", "-d", str(into)], check=True)
    (archive,) = into.glob("moto-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / f"moto-{version}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moto-version", default="5.2.6")
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="moto-suite-"))
    work.mkdir(parents=True, exist_ok=True)
    source = _download(args.moto_version, work)
    port = free_port()
    serve = [sys.executable, "-m", "moorage", "serve", "--emulator", "--no-workers"]
    server = subprocess.Popen(
        [*serve, "--port", str(port), "--data-dir", str(work / "data"), "--registry-host", HOST],
        stdout=subprocess.DEVNULL,
        stderr=(work / "server.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    print((work / "server.log").read_text(), file=sys.stderr)
                    return 1
                time.sleep(0.2)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env |= {
            "TEST_SERVER_MODE": "true",
            "TEST_SERVER_MODE_ENDPOINT": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no"]
        result = subprocess.run(
            [*pytest, "--tb=no", "-rf", "tests/test_ecr"],
            cwd=source,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        lines = result.stdout.splitlines()
        for line in lines:
            if line.startswith("FAILED"):
                print(line)
        print(lines[-1] if lines else result.stderr)
        return 0
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())

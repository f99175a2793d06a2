"""The server as an operator sees it: graceful shutdown, health and access log, settings
from a config file and the environment, TLS, and the ``moorage`` command's errors."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import random
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
import requests

from tests.e2e.client import RegistryClient, digest_of, request_head
from tests.e2e.conftest import StartServer
from tests.e2e.server import ServerProcess, free_port, run_cli, wait_for

pytestmark = pytest.mark.e2e

MiB = 1 << 20


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def wait_until_draining(server: ServerProcess) -> None:
    """SIGTERM, then wait until the server has closed its listening socket."""
    server.terminate()
    server.wait_for_log("shutting down")
    wait_for(lambda: refuses_connections(server.port), what="the listening socket to close")


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("moorage: error: "), result.stderr


def test_sigterm_finishes_a_download_in_flight(start_server: StartServer) -> None:
    """After SIGTERM the server refuses new connections but finishes a slow download, then
    exits 0."""
    server = start_server()
    data = random.Random(5).randbytes(16 * MiB)
    with RegistryClient(server.url) as client:
        digest = client.push_blob("team/app", data)

    with socket.socket() as sock:
        # A small receive window keeps most of the blob on the server's side until we read.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(request_head("GET", f"/v2/team/app/blobs/{digest}"))
        response = http.client.HTTPResponse(sock, method="GET")
        try:
            response.begin()
            assert response.status == 200
            received = response.read(MiB)

            wait_until_draining(server)
            assert server.running, "the server must not exit with a download in flight"
            received += response.read()
        finally:
            response.close()
    assert len(received) == len(data)
    assert received == data
    assert server.process is not None
    assert server.process.wait(30) == 0, server.log()


def test_sigterm_finishes_an_upload_in_flight(start_server: StartServer) -> None:
    """After SIGTERM a monolithic upload whose body is still arriving completes with 201,
    the server exits 0, and the blob is there after a restart."""
    # A short grace period: the upload needs milliseconds, and a failure should not wait 30s.
    server = start_server(env={"MOORAGE_SHUTDOWN_TIMEOUT": "10"})
    data = random.Random(6).randbytes(4 * MiB)
    path = f"/v2/team/app/blobs/uploads/?digest={digest_of(data)}"
    head = request_head("POST", path, {"Content-Length": str(len(data))})
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(head + data[: len(data) // 2])
        # A round trip on another connection: the server has taken in the request above.
        with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as health:
            assert health.status == 200

        wait_until_draining(server)
        sock.sendall(data[len(data) // 2 :])
        response = http.client.HTTPResponse(sock, method="POST")
        try:
            response.begin()
            assert response.status == 201, response.read()
            assert response.getheader("Docker-Content-Digest") == digest_of(data)
        finally:
            response.close()
    assert server.process is not None
    assert server.process.wait(30) == 0, server.log()

    server.start()
    with RegistryClient(server.url) as client:
        assert client.blob("team/app", digest_of(data)) == data


def test_healthz_and_access_log(server: ServerProcess) -> None:
    """``/healthz`` answers 200, and each request gets an access-log line."""
    health = requests.get(f"{server.url}/healthz", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}

    agent = "moorage-e2e-probe/1.0"
    response = requests.get(f"{server.url}/v2/", headers={"User-Agent": agent}, timeout=10)
    assert response.status_code == 200
    wait_for(
        lambda: any(
            '"GET /v2/ HTTP/1.1" 200' in line and agent in line for line in server.access_log()
        ),
        what="the access-log line",
    )


def assert_create_on_push(server: ServerProcess, allowed: list[str], refused: list[str]) -> None:
    with RegistryClient(server.url) as client:
        for name in allowed:
            client.push_blob(name, b"created on push")
        for name in refused:
            response = client.request("POST", f"/v2/{name}/blobs/uploads/")
            assert response.status_code == 404, (name, response.text)
            assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_config_file_alone(start_server: StartServer, tmp_path: Path) -> None:
    """A TOML file given with ``--config`` sets the address, data folder and
    create-on-push patterns."""
    port, data_dir = free_port(), tmp_path / "from-file"
    config = tmp_path / "moorage.toml"
    config.write_text(
        f'host = "127.0.0.1"\nport = {port}\ndata_dir = {json.dumps(str(data_dir))}\n'
        'create_on_push = ["team-*"]\n'
    )
    server = start_server(
        data_dir=data_dir, port=port, cli_options=False, extra_args=["--config", str(config)]
    )
    assert_create_on_push(server, allowed=["team-a/app"], refused=["other/app"])
    assert (data_dir / "moorage.db").is_file()


def test_environment_alone(start_server: StartServer, tmp_path: Path) -> None:
    """``MOORAGE_*`` variables alone configure the server; a comma-separated
    ``MOORAGE_CREATE_ON_PUSH`` holds several patterns."""
    port, data_dir = free_port(), tmp_path / "from-env"
    env = {
        "MOORAGE_HOST": "127.0.0.1",
        "MOORAGE_PORT": str(port),
        "MOORAGE_DATA_DIR": str(data_dir),
        "MOORAGE_CREATE_ON_PUSH": "team-*, ops/*",
    }
    server = start_server(data_dir=data_dir, port=port, cli_options=False, extra_args=[], env=env)
    assert_create_on_push(server, allowed=["team-b/app", "ops/tools"], refused=["dev/app"])
    assert (data_dir / "moorage.db").is_file()


def test_command_line_beats_environment_beats_file(
    start_server: StartServer, tmp_path: Path
) -> None:
    """Each setting comes from the command line if given there, else the environment,
    else the config file."""
    file_port, env_port = free_port(), free_port()
    config = tmp_path / "moorage.toml"
    config.write_text(f'port = {file_port}\ncreate_on_push = ["file-*"]\n')
    server = start_server(
        data_dir=tmp_path / "layered",
        extra_args=["--config", str(config)],
        env={"MOORAGE_CREATE_ON_PUSH": "env-*", "MOORAGE_PORT": str(env_port)},
    )
    assert server.port not in (file_port, env_port)
    assert refuses_connections(file_port)
    assert refuses_connections(env_port)
    assert_create_on_push(server, allowed=["env-a/app"], refused=["file-a/app"])


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files; ``openssl`` if the
    ``cryptography`` package is missing."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        command = ["openssl", "req", "-x509", "-newkey", "ec", "-nodes", "-days", "2"]
        command += ["-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", str(key), "-out", str(cert)]
        command += ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        subprocess.run(command, check=True, capture_output=True)
        return cert, key

    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    public_key = private_key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(private_key, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


def test_tls(start_server: StartServer, tmp_path: Path) -> None:
    """With ``--tls-cert``/``--tls-key`` the API is served over HTTPS with that
    certificate: trusted when the client trusts it, refused by the default trust store."""
    cert, key = self_signed_certificate(tmp_path)
    server = start_server(tls_ca=cert, extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])
    assert server.url.startswith("https://")

    response = requests.get(f"{server.url}/v2/", verify=str(cert), timeout=10)
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{server.url}/v2/", timeout=10)


def test_repo_commands_round_trip(tmp_path: Path) -> None:
    """``moorage repo create|list|delete`` on a data folder, with one-line errors."""
    data_dir = str(tmp_path / "data")

    def repo(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("repo", *args, "--data-dir", data_dir)

    for name in ("team/one", "team/two"):
        created = repo("create", name)
        assert created.returncode == 0, created.stderr
        assert created.stdout.strip() == name
    assert repo("list").stdout.split() == ["team/one", "team/two"]
    assert_one_line_error(repo("create", "team/one"))

    deleted = repo("delete", "team/one")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == "deleted team/one"
    assert repo("list").stdout.split() == ["team/two"]


def test_invalid_repository_name_is_a_one_line_error(tmp_path: Path) -> None:
    """``moorage repo create BAD..NAME`` fails with one line on stderr, creating nothing."""
    data_dir = str(tmp_path / "data")
    assert_one_line_error(run_cli("repo", "create", "BAD..NAME", "--data-dir", data_dir))
    listed = run_cli("repo", "list", "--data-dir", data_dir)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == ""


def test_out_of_range_port_is_a_one_line_error(tmp_path: Path) -> None:
    """``moorage serve --port 99999`` exits non-zero with one line on stderr."""
    result = run_cli("serve", "--port", "99999", "--data-dir", str(tmp_path / "data"))
    assert_one_line_error(result)
    assert "port" in result.stderr

"""The public address (``--public-port``): anonymous pulls of public repositories at
``<host>:<public port>/<alias>/<repository>``, pushes there with ECR Public's login, nothing
private reachable through it, and the anonymous pull rate, against real servers with IAM on
and skopeo as the client."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.aws import Credentials, admin_init, ecr_client
from tests.e2e.ecr.helpers import allow, create_user, push, skopeo
from tests.e2e.oci_layout import Layout, build_layout
from tests.e2e.server import ServerProcess, free_port
from tests.e2e.test_ecr_public import public_client

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class PublicServer:
    process: ServerProcess
    admin: Credentials
    public_port: int

    @property
    def public_host(self) -> str:
        return f"127.0.0.1:{self.public_port}"

    def public(self, credentials: Credentials | None = None) -> Any:
        return public_client(self.process.url, credentials or self.admin)


def start_public_server(data_dir: Path, *args: str, **env: str) -> PublicServer:
    admin = admin_init(data_dir)
    port = free_port()
    process = ServerProcess(
        data_dir=data_dir,
        emulator=False,
        extra_args=["--public-port", str(port), "--public-host", f"127.0.0.1:{port}", *args],
        env=env,
    ).start()
    return PublicServer(process, admin, port)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublicServer]:
    # No anonymous rate limit here: the tests pull as fast as they like.
    started = start_public_server(
        tmp_path_factory.mktemp("public") / "data", "--public-pull-rate", "0"
    )
    yield started
    assert started.process.stop() == 0, started.process.log()


@pytest.fixture(scope="module")
def alias(server: PublicServer) -> str:
    return str(server.public().describe_registries()["registries"][0]["aliases"][0]["name"])


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    # Two platforms: an index and both its manifests travel.
    return build_layout(tmp_path_factory.mktemp("layout") / "image", file_size=4 * 1024)


def public_login(client: Any) -> str:
    """``aws ecr-public get-login-password``: the password of the token."""
    token = client.get_authorization_token()["authorizationData"]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    assert user == "AWS"
    return password


@pytest.fixture(scope="module")
def pushed(server: PublicServer, alias: str, layout: Layout) -> str:
    """``web/app:v1`` pushed to the public address with ECR Public's login: its URI."""
    created = server.public().create_repository(repositoryName="web/app")["repository"]
    uri = created["repositoryUri"]
    assert uri == f"{server.public_host}/{alias}/web/app"
    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"AWS:{public_login(server.public())}",
        f"oci:{layout.path}:{layout.tag}",
        f"docker://{uri}:v1",
    )
    return str(uri)


def raw(reference: str) -> bytes:
    return skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{reference}").stdout.encode()


def test_anyone_pulls_a_public_image(pushed: str, layout: Layout, tmp_path: Path) -> None:
    # Anonymous: skopeo is given no credentials at all.
    index = raw(f"{pushed}:v1")
    assert "sha256:" + hashlib.sha256(index).hexdigest() == layout.index_digest
    for digest in layout.manifest_digests:  # every platform's manifest, by digest
        manifest = raw(f"{pushed}@{digest}")
        assert "sha256:" + hashlib.sha256(manifest).hexdigest() == digest
    copied = tmp_path / "copy"
    skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{pushed}:v1", f"oci:{copied}:v1")
    blobs = {f"sha256:{p.name}" for p in (copied / "blobs" / "sha256").iterdir()}
    assert set(layout.blob_digests) <= blobs
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{pushed}").stdout)
    assert tags["Tags"] == ["v1"]


def test_the_api_shows_what_was_pushed_at_the_public_address(
    server: PublicServer, pushed: str
) -> None:
    (detail,) = [
        d
        for d in server.public().describe_images(repositoryName="web/app")["imageDetails"]
        if d.get("imageTags")
    ]
    assert detail["imageTags"] == ["v1"]
    assert detail["imageManifestMediaType"] == "application/vnd.oci.image.index.v1+json"


def _status(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code)


def test_anonymous_writes_are_refused(server: PublicServer, pushed: str, alias: str) -> None:
    base = f"http://{server.public_host}/v2/{alias}/web/app"
    assert _status(f"{base}/blobs/uploads/", "POST") == 401
    assert _status(f"{base}/manifests/v1", "DELETE") == 401
    assert _status(f"{base}/manifests/v1", "PUT") == 401
    # The image is still there.
    assert _status(f"{base}/manifests/v1", "HEAD") == 200


def test_the_token_endpoint_gives_anonymous_tokens(server: PublicServer, pushed: str) -> None:
    scope = f"repository:{pushed.split('/', 1)[1]}:pull"
    with urllib.request.urlopen(
        f"http://{server.public_host}/token?scope={scope}", timeout=10
    ) as answer:
        token = json.load(answer)["token"]
    manifest = f"http://{pushed.replace(server.public_host, server.public_host + '/v2', 1)}"
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.oci.image.index.v1+json",
    }
    assert _status(f"{manifest}/manifests/v1", headers=headers) == 200


def test_nothing_private_is_reachable(server: PublicServer, alias: str, tmp_path: Path) -> None:
    ecr = ecr_client(server.process.url, server.admin)
    # A private repository named like a public address, and one named as a public one.
    for name in (f"{alias}/secret/app", "secret/app"):
        ecr.create_repository(repositoryName=name)
        small = build_layout(tmp_path / name.replace("/", "-"), architectures=("amd64",))
        push(ecr, server.process.host, small, name)
    for name in (f"{alias}/secret/app", f"{alias}/{alias}/secret/app", "secret/app"):
        url = f"http://{server.public_host}/v2/{name}/manifests/latest"
        assert _status(url) == 404, name
    result = skopeo(
        "inspect",
        "--tls-verify=false",
        f"docker://{server.public_host}/{alias}/secret/app",
        check=False,
    )
    assert result.returncode != 0
    # Nor is a public repository reachable on the private address.
    assert _status(f"http://{server.process.host}/v2/{alias}/web/app/manifests/v1") == 401


def test_a_login_without_ecr_public_rights_cannot_push(
    server: PublicServer, alias: str, pushed: str, layout: Layout
) -> None:
    user = create_user(
        server.process.data_dir,
        server.admin.account_id,
        "public-login-only",
        allow(["ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken"]),
    )
    password = public_login(server.public(user))
    result = skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"AWS:{password}",
        f"oci:{layout.path}:{layout.tag}",
        f"docker://{pushed}:v2",
        check=False,
    )
    assert result.returncode != 0
    assert "denied" in result.stderr.lower() or "403" in result.stderr
    # But it pulls, as anyone does.
    assert raw(f"{pushed}:v1")


def test_anonymous_pulls_are_limited_per_client_address(tmp_path: Path, layout: Layout) -> None:
    limited = start_public_server(
        tmp_path / "data", "--public-pull-rate", "0.5", MOORAGE_PUBLIC_PULL_BURST="3"
    )
    try:
        public = limited.public()
        alias = public.describe_registries()["registries"][0]["aliases"][0]["name"]
        uri = public.create_repository(repositoryName="rate/app")["repository"]["repositoryUri"]
        skopeo(
            "copy",
            "--all",
            "--dest-tls-verify=false",
            "--dest-creds",
            f"AWS:{public_login(public)}",
            f"oci:{layout.path}:{layout.tag}",
            f"docker://{uri}:v1",
        )
        url = f"http://{limited.public_host}/v2/{alias}/rate/app/manifests/v1"
        statuses = [_status(url, "HEAD") for _ in range(5)]
        assert statuses[:3] == [200, 200, 200]
        assert statuses[3:] == [429, 429]
        request = urllib.request.Request(url, method="HEAD")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        with refused.value:
            assert refused.value.code == 429
            assert int(refused.value.headers["Retry-After"]) >= 1
        # A logged-in client is counted by its account, not with the anonymous ones.
        basic = base64.b64encode(f"AWS:{public_login(public)}".encode()).decode()
        assert _status(url, "HEAD", {"Authorization": f"Basic {basic}"}) == 200
    finally:
        assert limited.process.stop() == 0, limited.process.log()

"""Hostile and malformed requests written byte for byte on a real socket: traversal in
names, digests and upload ids, bogus headers, oversized and pathological manifests, wrong
digests and bodies cut short. Each is refused with a 4xx, the server stays healthy, never
answers 500, and no state changes."""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Iterator

import pytest

from tests.e2e.client import (
    OCI_MANIFEST,
    RegistryClient,
    digest_of,
    image_manifest,
    raw_request,
    request_head,
)
from tests.e2e.conftest import CALL_FAILED
from tests.e2e.server import ServerProcess, wait_for

pytestmark = pytest.mark.e2e

MiB = 1 << 20
CONFIG = b'{"architecture":"amd64","os":"linux"}'
LAYER = b"a layer"
MANIFEST = image_manifest(CONFIG, [LAYER])


@pytest.fixture(scope="module")
def server(module_server: ServerProcess) -> ServerProcess:
    with RegistryClient(module_server.url) as client:
        client.push_image("team/app", "v1", CONFIG, [LAYER])
    return module_server


def answered_500(line: str) -> bool:
    # A request whose client hung up is logged with status 500 and an empty body although
    # nothing was answered; test_client_hang_up_is_not_logged_as_a_server_error covers it.
    return '" 500 ' in line and '" 500 0 ' not in line


@pytest.fixture(autouse=True)
def stays_healthy(server: ServerProcess, request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: ``/healthz`` answers 200 and no request of the test got a 500."""
    seen = len(server.access_log())
    yield
    health = raw_request(server.port, "GET", "/healthz")
    assert health.status == 200
    if request.node.stash.get(CALL_FAILED, False):
        return
    # A request's access-log line may land just after its response was read.
    wait_for(lambda: '"GET /healthz ' in "".join(server.access_log()[seen:]), what="access log")
    errors = [line for line in server.access_log()[seen:] if answered_500(line)]
    assert errors == [], "\n".join(errors)


@pytest.fixture
def upload(server: ServerProcess) -> Iterator[tuple[RegistryClient, str]]:
    """An upload session holding ten bytes: (client, location)."""
    with RegistryClient(server.url) as client:
        location = client.start_upload("team/app")
        response = client.patch(location, b"0123456789", 0)
        assert response.status_code == 202, response.text
        yield client, response.headers["Location"]


TRAVERSALS = [
    ("GET", "/v2/../../etc/passwd/manifests/x"),
    ("GET", "/v2/%2e%2e/%2e%2e/etc/passwd/manifests/x"),
    ("GET", "/v2/team/%2E%2E/%2E%2E/etc/passwd/tags/list"),
    ("PUT", "/v2/..%2f..%2fetc/manifests/x"),
    ("POST", "/v2/../../tmp/evil/blobs/uploads/"),
    ("POST", "/v2/%2e%2e/blobs/uploads/"),
    ("GET", "/v2/team/app/blobs/sha256:..%2f..%2f..%2fmoorage.db"),
    ("GET", "/v2/team/app/blobs/uploads/..%2f..%2fmoorage.db"),
    ("DELETE", "/v2/team/app/blobs/uploads/..%2F..%2Fblobs"),
    ("PATCH", "/v2/team/app/blobs/uploads/..%2f..%2fmoorage.db"),
    ("GET", "/v2/team/app/manifests/..%2f..%2fmoorage.db"),
    ("GET", "/v2/team/app/referrers/sha256:..%2f..%2fmoorage.db"),
    ("GET", "/v2/team%00/tags/list"),
]


@pytest.mark.parametrize(("method", "path"), TRAVERSALS)
def test_path_traversal_is_refused(server: ServerProcess, method: str, path: str) -> None:
    """``..`` (plain or percent-encoded) in a name, digest, reference or upload id is a
    4xx; nothing outside the registry is read, and no repository appears."""
    body = MANIFEST if method == "PUT" else b"x"
    headers = {"Content-Type": OCI_MANIFEST} if method == "PUT" else {}
    response = raw_request(server.port, method, path, headers, body)
    assert response.status in (400, 404, 405), (response.status, response.body)
    assert b"root:" not in response.body
    assert b"SQLite format" not in response.body

    catalog = json.loads(raw_request(server.port, "GET", "/v2/_catalog").body)
    assert catalog["repositories"] == ["team/app"]
    assert sorted(path.name for path in server.data_dir.iterdir()) <= [
        "blobs",
        "moorage.db",
        "moorage.db-shm",
        "moorage.db-wal",
        "uploads",
    ]
    assert (server.data_dir / "moorage.db").is_file()


@pytest.mark.parametrize(
    ("content_range", "status"),
    [
        ("bytes=abc", 400),
        ("10-", 400),
        ("-1-5", 400),
        ("15-12", 416),
        ("0-9", 416),
        ("99999999999999999999-99999999999999999999", 416),
        ("10-99999999999999999999", 400),
    ],
)
def test_bogus_content_range(
    upload: tuple[RegistryClient, str], server: ServerProcess, content_range: str, status: int
) -> None:
    """A malformed or non-continuing ``Content-Range`` is refused and the upload keeps
    its ten bytes."""
    client, location = upload
    headers = {"Content-Range": content_range}
    response = raw_request(server.port, "PATCH", location, headers, b"abcdefghij")
    assert response.status == status, response.body
    assert response.error_code() in ("BLOB_UPLOAD_INVALID", "SIZE_INVALID")
    if status == 416:
        assert response.headers["range"] == "0-9"
    assert client.upload_range(location) == "0-9"


@pytest.mark.parametrize("length", ["-1", "abc", "1, 2", "99999999999999999999999"])
def test_malformed_content_length(server: ServerProcess, length: str) -> None:
    """A Content-Length that is not a number is a 400."""
    headers = {"Content-Length": length, "Content-Type": OCI_MANIFEST}
    response = raw_request(server.port, "PUT", "/v2/team/app/manifests/bad", headers, MANIFEST)
    assert response.status == 400


def chunked(data: bytes, size: int = MiB) -> bytes:
    """``data`` in HTTP/1.1 chunked transfer coding."""
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_manifest_over_four_mib_is_413(server: ServerProcess, framing: str) -> None:
    """A manifest body over 4 MiB is 413 MANIFEST_INVALID, whether its length is declared
    or it arrives chunked, and no tag is created."""
    padding = "x" * (4 * MiB)
    payload = json.loads(MANIFEST)
    payload["annotations"] = {"padding": padding}
    body = json.dumps(payload).encode()
    headers = {"Content-Type": OCI_MANIFEST}
    if framing == "chunked":
        headers["Transfer-Encoding"] = "chunked"
        body = chunked(body)
    response = raw_request(server.port, "PUT", "/v2/team/app/manifests/huge", headers, body)
    assert response.status == 413
    assert response.error_code() == "MANIFEST_INVALID"
    assert raw_request(server.port, "GET", "/v2/team/app/manifests/huge").status == 404


@pytest.mark.parametrize(
    "payload",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000],
    ids=["nested-arrays", "nested-objects"],
)
def test_deeply_nested_manifest_is_invalid(server: ServerProcess, payload: bytes) -> None:
    """JSON nested 100,000 deep (well under 4 MiB) is MANIFEST_INVALID, not a crash."""
    headers = {"Content-Type": OCI_MANIFEST}
    response = raw_request(server.port, "PUT", "/v2/team/app/manifests/deep", headers, payload)
    assert response.status == 400, response.body
    assert response.error_code() == "MANIFEST_INVALID"


def test_wrong_digests(server: ServerProcess) -> None:
    """A blob or manifest whose bytes do not match the digest given is DIGEST_INVALID and
    stores nothing; a chunked upload stays open after a wrong digest and completes with
    the right one."""
    data = b"blob with a lying digest"
    wrong = digest_of(b"something else")
    path = f"/v2/team/app/blobs/uploads/?digest={wrong}"
    response = raw_request(server.port, "POST", path, body=data)
    assert response.status == 400
    assert response.error_code() == "DIGEST_INVALID"
    for digest in (wrong, digest_of(data)):
        assert raw_request(server.port, "HEAD", f"/v2/team/app/blobs/{digest}").status == 404

    with RegistryClient(server.url) as client:
        location = client.start_upload("team/app")
        assert client.patch(location, data, 0).status_code == 202
        refused = client.request("PUT", location, params={"digest": wrong})
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["code"] == "DIGEST_INVALID"
        assert client.upload_range(location) == f"0-{len(data) - 1}"
        assert client.complete(location, data) == digest_of(data)

    other = image_manifest(CONFIG, [LAYER], annotations={"x": "y"})
    headers = {"Content-Type": OCI_MANIFEST}
    response = raw_request(server.port, "PUT", f"/v2/team/app/manifests/{wrong}", headers, other)
    assert response.status == 400
    assert response.error_code() == "DIGEST_INVALID"
    for reference in (wrong, digest_of(other)):
        status = raw_request(server.port, "GET", f"/v2/team/app/manifests/{reference}").status
        assert status == 404


def test_truncated_chunk_leaves_the_upload_unchanged(
    upload: tuple[RegistryClient, str], server: ServerProcess
) -> None:
    """A PATCH that declares 1000 bytes, sends 10 and hangs up does not move the upload:
    its Range stays put, and the next chunk continues from there to a correct blob."""
    client, location = upload
    headers = {"Content-Length": "1000", "Content-Range": "10-1009"}
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(request_head("PATCH", location, headers) + b"TRUNCATED!")
        # A round trip on another connection: the PATCH handler is reading the body now.
        assert raw_request(server.port, "GET", "/healthz").status == 200
    assert client.upload_range(location) == "0-9"

    # The next chunk waits for the cut request to be finished with (one writer per upload).
    response = client.patch(location, b"abcdefghij", 10)
    assert response.status_code == 202, response.text
    assert response.headers["Range"] == "0-19"
    digest = client.complete(location, b"0123456789abcdefghij")
    assert client.blob("team/app", digest) == b"0123456789abcdefghij"


def test_client_hang_up_is_not_logged_as_a_server_error(
    upload: tuple[RegistryClient, str], server: ServerProcess
) -> None:
    """A client that disconnects mid-body is the client's failure: the server logs no
    ERROR and no 5xx status for it."""
    client, location = upload
    before = len(server.log().splitlines())
    headers = {"Content-Length": "1000", "Content-Range": "10-1009"}
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(request_head("PATCH", location, headers) + b"cut short")
        # A round trip on another connection: the PATCH handler is reading the body now.
        assert raw_request(server.port, "GET", "/healthz").status == 200
    # Serialised behind the cut request (one writer per upload): its logging is done.
    assert client.patch(location, b"abcdefghij", 10).status_code == 202

    def patches_logged() -> list[str]:
        lines = server.log().splitlines()[before:]
        return [line for line in lines if f'"PATCH {location} ' in line]

    wait_for(lambda: len(patches_logged()) == 2, what="both PATCHes in the access log")
    lines = server.log().splitlines()[before:]
    assert [line for line in lines if " ERROR " in line] == []
    assert [line for line in lines if '"PATCH ' in line and '" 5' in line] == []


def test_random_garbage_requests(server: ServerProcess) -> None:
    """Random bytes as requests get 400 or a closed connection, never a 500."""
    rng = random.Random(8)
    for _ in range(20):
        garbage = rng.randbytes(rng.randint(1, 2048))
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(garbage + b"\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert reply == b"" or (reply.startswith(b"HTTP/1.") and b" 500 " not in reply[:16])


def test_stored_blobs_still_hash_to_their_names(server: ServerProcess) -> None:
    """After all of the above, every stored blob still hashes to its name."""
    for path in (server.data_dir / "blobs").rglob("*"):
        if path.is_file():
            assert digest_of(path.read_bytes()) == f"sha256:{path.name}"

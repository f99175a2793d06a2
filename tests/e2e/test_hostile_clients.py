"""A hostile client against a real ``moorage serve``, over raw sockets: each way one client
could make the server slow or wrong for every other, and a seeded generator of malformed
requests for every ``/v2/`` route and every ECR operation.

Each answer must be the protocol's own error (the OCI ``{"errors": [...]}`` form on ``/v2/``,
AWS's ``{"__type", "message"}`` on the API), never a 500, and an honest client running beside
the attacks must get every answer right. The server runs with short timeouts so that the
timeout cases take seconds; production defaults are nginx's (60 s, 75 s).

How fast the server stays under each attack is measured by ``python -m bench.abuse``
(docs/benchmarks.md), not asserted here; these tests assert what is right or wrong.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import botocore.session
import pytest

from tests.e2e.aws import Credentials, ecr_client
from tests.e2e.client import RegistryClient, digest_of, raw_request, request_head
from tests.e2e.conftest import IamServer
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

NAME = "hostile/app"
LAYER = b"x" * 4096
CONFIG = b'{"architecture":"amd64","os":"linux"}'
ATTACKER = "127.0.0.2"  # the kernel routes all of 127/8 to lo: a second client address
PREFIX = "AmazonEC2ContainerRegistry_V20150921"
HUGE = "9" * 4301  # past Python's int-from-string limit


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        data_dir=tmp_path_factory.mktemp("hostile") / "data",
        env={
            "MOORAGE_HEADER_TIMEOUT": "1",
            "MOORAGE_BODY_TIMEOUT": "1",
            "MOORAGE_IDLE_TIMEOUT": "2",
            "MOORAGE_MAX_UPLOADS_PER_CLIENT": "4",
            "MOORAGE_MAX_CONNECTIONS": "200",
        },
    ).start()
    with RegistryClient(process.url) as client:
        client.push_image(NAME, "v1", CONFIG, [LAYER])
    yield process
    assert "Traceback" not in process.log(), process.log()
    assert process.stop() == 0, process.log()


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(15)
    sock.connect(("127.0.0.1", port))
    return sock


def closed_by_server(sock: socket.socket) -> bytes:
    """What the server sends before it closes the connection (it must close it)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _response_status(sock: socket.socket) -> int:
    """Read one whole response from a keep-alive connection; its status."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    response.read()
    return response.status


def oci_error(body: bytes) -> str:
    document = json.loads(body)
    return str(document["errors"][0]["code"])


# --- defects, one test each ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (f"bytes=0-{HUGE}", 206),  # clamped to the blob
        (f"bytes=-{HUGE}", 206),  # the whole blob
        (f"bytes={HUGE}-", 416),
        (f"bytes={HUGE[:4000]}-{HUGE[:4000]}", 416),  # (both in full: a header past 8 KiB)
        ("bytes=\u0661-\u0669", 200),  # not ASCII digits: not a range, the whole blob
    ],
    ids=["end", "suffix", "start", "both", "arabic-indic"],
)
def test_ranges_with_huge_or_foreign_numbers(
    server: ServerProcess, header: str, status: int
) -> None:
    response = raw_request(
        server.port,
        "GET",
        f"/v2/{NAME}/blobs/{digest_of(LAYER)}",
        {"Range": header.encode().decode("latin-1")},
    )
    assert response.status == status, response.body[:200]
    if status != 416:
        assert response.body == LAYER


@pytest.mark.parametrize(
    ("content_range", "status", "code"),
    [
        (f"0-{HUGE}", 400, "SIZE_INVALID"),  # length disagrees with the range
        # Does not continue the upload (both in full would be a header past 8 KiB: 431).
        (f"{HUGE[:4000]}-{HUGE[:4000]}", 416, "BLOB_UPLOAD_INVALID"),
        ("\u0661\u0660-\u0661\u0669", 400, "BLOB_UPLOAD_INVALID"),
    ],
    ids=["end", "both", "arabic-indic"],
)
def test_content_range_with_huge_or_foreign_numbers(
    server: ServerProcess, content_range: str, status: int, code: str
) -> None:
    with RegistryClient(server.url) as client:
        location = client.start_upload(NAME)
    response = raw_request(
        server.port,
        "PATCH",
        location,
        {
            "Content-Range": content_range.encode().decode("latin-1"),
            "Content-Type": "application/octet-stream",
        },
        body=b"0123456789",
    )
    assert (response.status, oci_error(response.body)) == (status, code)


def test_an_upload_id_with_braces_is_blob_upload_unknown(server: ServerProcess) -> None:
    response = raw_request(server.port, "GET", f"/v2/{NAME}/blobs/uploads/{{uuid}}")
    assert (response.status, oci_error(response.body)) == (404, "BLOB_UPLOAD_UNKNOWN")


def test_an_oversized_request_line_or_header_in_the_oci_form(server: ServerProcess) -> None:
    response = raw_request(server.port, "GET", "/v2/" + "a" * 20_000 + "/tags/list")
    assert (response.status, oci_error(response.body)) == (414, "UNSUPPORTED")
    response = raw_request(server.port, "GET", "/v2/", {"X-Big": "b" * 10_000})
    assert (response.status, oci_error(response.body)) == (431, "UNSUPPORTED")


def test_a_tls_hello_on_the_plain_port_is_not_an_access_log_line(server: ServerProcess) -> None:
    before = len(server.access_log())
    with connect(server.port) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64))
        answer = closed_by_server(sock)
    assert answer.startswith(b"HTTP/1.0 400")
    with RegistryClient(server.url) as client:
        assert client.request("GET", "/v2/").status_code == 200
    lines = server.access_log()[before:]
    assert not any("UNKNOWN" in line for line in lines), lines


def test_deep_json_on_the_api_is_a_serialization_exception(server: ServerProcess) -> None:
    for body in (
        b'{"a":' + b"[" * 1000 + b"]" * 1000 + b"}",
        b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ):
        response = raw_request(
            server.port,
            "POST",
            "/",
            _api_headers("DescribeRepositories"),
            body=body,
        )
        assert response.status == 400
        assert json.loads(response.body)["__type"] == "SerializationException"


def test_a_nested_lifecycle_policy_is_invalid(server: ServerProcess) -> None:
    client = ecr_client(server.url, Credentials("AKIDEXAMPLE", "secret", "123456789012"))
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.put_lifecycle_policy(
            repositoryName=NAME, lifecyclePolicyText='{"rules":' + "[" * 3000 + "]" * 3000 + "}"
        )


def test_a_policy_pattern_bomb_is_matched_at_once(iam_server: IamServer) -> None:
    """``ecr:`` and 13 stars took 8.8 s per request; 40 would have taken years. The read
    timeout is the bound: before the fix this call never came back."""
    client = ecr_client(iam_server.process.url, iam_server.admin, read_timeout=30)
    client.create_repository(repositoryName="hostile/bomb")
    bomb = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "ecr:" + "*" * 40 + "X"},
        ],
    }
    client.set_repository_policy(repositoryName="hostile/bomb", policyText=json.dumps(bomb))
    found = client.describe_repositories(repositoryNames=["hostile/bomb"])
    assert found["repositories"][0]["repositoryName"] == "hostile/bomb"


def test_an_unsigned_body_is_not_read(iam_server: IamServer) -> None:
    """40 unauthenticated 30 MiB bodies took RSS to 1.3 GiB: now nothing is read until the
    headers name a key of ours. The body is never sent, and the answer comes at once."""
    with connect(iam_server.process.port) as sock:
        sock.sendall(
            request_head(
                "POST",
                "/",
                {
                    "Content-Type": "application/x-amz-json-1.1",
                    "X-Amz-Target": f"{PREFIX}.UploadLayerPart",
                    "Content-Length": "31457280",
                },
            )
        )
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 400")
    assert b"MissingAuthenticationTokenException" in head


def test_idle_and_slowloris_connections_are_closed(server: ServerProcess) -> None:
    started = time.monotonic()
    with connect(server.port) as idle, connect(server.port) as slow:
        slow.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):  # a header line now and then never completes the head
            time.sleep(0.4)
            slow.sendall(b"X-Slow: 1\r\n")
        assert closed_by_server(slow) == b""
        assert closed_by_server(idle) == b""
    # Both timeouts are seconds here; the sockets were not left open.
    assert time.monotonic() - started < 12


def test_a_stalled_body_is_408_and_frees_its_slot(server: ServerProcess) -> None:
    with RegistryClient(server.url) as client:
        location = client.start_upload(NAME)
    with connect(server.port) as sock:
        sock.sendall(
            request_head(
                "PATCH",
                location,
                {"Content-Length": "100000", "Content-Type": "application/octet-stream"},
            ).replace(b"Connection: close\r\n", b"")
            + b"abc"
        )
        answer = closed_by_server(sock)
    assert answer.startswith(b"HTTP/1.1 408")
    assert oci_error(answer.split(b"\r\n\r\n", 1)[1]) == "BLOB_UPLOAD_INVALID"


def test_trickled_uploads_from_one_address_leave_others_alone(server: ServerProcess) -> None:
    """Many slow uploads from one address took every write slot on the server: the next
    push from anyone got 429. Now that address has its share (4 here) and no more."""
    with RegistryClient(server.url) as client:
        locations = [client.start_upload(NAME) for _ in range(8)]
    sockets: list[socket.socket] = []
    try:
        refused = 0
        for location in locations:
            sock = connect(server.port, ATTACKER)
            sockets.append(sock)
            sock.sendall(
                request_head(
                    "PATCH",
                    location,
                    {"Content-Length": "100000000", "Content-Type": "application/octet-stream"},
                )
                + b"a"
            )
        time.sleep(0.3)
        for sock in sockets:
            sock.settimeout(0.2)
            try:
                if sock.recv(65536).startswith(b"HTTP/1.1 429"):
                    refused += 1
            except TimeoutError:
                pass  # admitted: still trickling
        assert refused == 4  # 8 tried, 4 admitted
        # Meanwhile, another client pushes as if nothing happened.
        with RegistryClient(server.url) as client:
            client.push_image(NAME, "honest", CONFIG, [b"honest layer"])
    finally:
        for sock in sockets:
            sock.close()


def test_the_connection_cap_closes_stalled_connections_first(server: ServerProcess) -> None:
    """Past the cap (200 here), a slowloris's unfinished heads are closed to make room, not
    the honest client's idle keep-alive connection between two of its requests."""
    keep_alive = b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(server.port) as honest:
        honest.sendall(keep_alive)
        assert _response_status(honest) == 200  # its connection, idle from now on
        stalled = []
        try:
            for _ in range(260):
                sock = connect(server.port, ATTACKER)
                sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
                stalled.append(sock)
            time.sleep(0.2)
            honest.sendall(keep_alive)  # the same connection: it must still be open
            assert _response_status(honest) == 200
        finally:
            for sock in stalled:
                sock.close()
    assert "the cap (max_connections) is reached" in server.log()


def test_a_refused_large_body_is_not_read(iam_server: IamServer) -> None:
    """Anonymous, and 30 MiB: the answer comes from the headers, and the connection closes
    instead of reading the body for aiohttp's 10 s of lingering."""
    with connect(iam_server.process.port) as sock:
        sock.sendall(
            request_head(
                "PATCH",
                "/v2/team/app/blobs/uploads/00000000-0000-4000-8000-000000000000",
                {"Content-Length": str(30 << 20), "Content-Type": "application/octet-stream"},
            ).replace(b"Connection: close\r\n", b"")
            + bytes(1 << 16)
        )
        started = time.monotonic()
        answer = closed_by_server(sock)
    assert answer.startswith(b"HTTP/1.1 401")
    assert time.monotonic() - started < 5  # closed at once, not after lingering


# --- the generator -------------------------------------------------------------------------


def _api_headers(operation: str) -> dict[str, str]:
    # Emulator mode takes any signature: the request reaches validation.
    return {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"{PREFIX}.{operation}",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/ecr/"
        "aws4_request, SignedHeaders=host, Signature=" + "0" * 64,
    }


_WRONG_VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    10**30,
    1.5e308,
    "",
    "x" * 70_000,
    "\ud800",  # a lone surrogate: JSON can say it, UTF-8 cannot
    "../../etc/passwd",
    "*" * 300 + "X",
    [],
    [None] * 300,
    {},
    {"a": {"b": {"c": [1, [2, [3]]]}}},
]


@dataclass
class Generator:
    """Malformed requests from a seed: every ECR operation's members with wrong types and
    boundary values, and every /v2/ route with hostile names, references, headers and bodies."""

    seed: int
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.model = botocore.session.get_session().get_service_model("ecr")

    def api_request(self) -> tuple[str, dict[str, str], bytes]:
        operation = self.rng.choice(self.model.operation_names)
        shape = self.model.operation_model(operation).input_shape
        document: dict[str, Any] = {}
        if shape is not None:
            for name, member in shape.members.items():
                if self.rng.random() < 0.6:
                    document[name] = self._value(member)
        kind = self.rng.random()
        if kind < 0.1:
            body = json.dumps(document).encode()[: self.rng.randrange(1, 64)]  # cut short
        elif kind < 0.15:
            body = b"\xff\xfe" + json.dumps(document).encode()  # not UTF-8
        else:
            body = json.dumps(document).encode()
        return operation, _api_headers(operation), body

    def _value(self, member: Any) -> Any:
        roll = self.rng.random()
        if roll < 0.5:
            return self.rng.choice(_WRONG_VALUES)
        kind = member.type_name
        if kind == "string":
            limit = member.metadata.get("max", 256)
            return self.rng.choice(["", "a" * (limit + 1), "a" * limit, "A!" * 10, "é" * 5])
        if kind in ("integer", "long"):
            low, high = member.metadata.get("min", 0), member.metadata.get("max", 1000)
            return self.rng.choice([low - 1, high + 1, 2**63, -(2**63)])
        if kind == "list":
            return [self._value(member.member) for _ in range(self.rng.randrange(0, 4))]
        if kind == "structure":
            return {name: self._value(sub) for name, sub in list(member.members.items())[:3]}
        if kind == "map":
            return {"k" * self.rng.randrange(1, 300): self._value(member.value)}
        return self.rng.choice(_WRONG_VALUES)

    def oci_request(self) -> tuple[str, str, dict[str, str], bytes]:
        name = self.rng.choice([NAME, "a", "A/B", "..", "x" * 300, "a//b", "%2e%2e", NAME + "/"])
        digest = self.rng.choice(
            [digest_of(LAYER), "sha256:" + "0" * 64, "sha256:zz", "md5:abc", "", "sha256:" + HUGE]
        )
        reference = self.rng.choice(["v1", digest, "-bad", "x" * 200, "%00"])
        upload = self.rng.choice(["00000000-0000-4000-8000-000000000000", "{uuid}", "..", "z" * 50])
        method, path = self.rng.choice(
            [
                ("GET", "/v2/"),
                ("GET", "/v2/_catalog?n=" + self.rng.choice(["-1", HUGE, "abc", "0"])),
                ("GET", f"/v2/{name}/tags/list?n={self.rng.choice(['5', HUGE, '-3'])}&last=%ff"),
                ("GET", f"/v2/{name}/manifests/{reference}"),
                ("HEAD", f"/v2/{name}/manifests/{reference}"),
                ("PUT", f"/v2/{name}/manifests/{reference}"),
                ("DELETE", f"/v2/{name}/manifests/{reference}"),
                ("GET", f"/v2/{name}/blobs/{digest}"),
                ("HEAD", f"/v2/{name}/blobs/{digest}"),
                ("DELETE", f"/v2/{name}/blobs/{digest}"),
                ("POST", f"/v2/{name}/blobs/uploads/?digest={digest}"),
                ("POST", f"/v2/{name}/blobs/uploads/?mount={digest}&from=" + name),
                ("PATCH", f"/v2/{name}/blobs/uploads/{upload}"),
                ("PUT", f"/v2/{name}/blobs/uploads/{upload}?digest={digest}"),
                ("GET", f"/v2/{name}/blobs/uploads/{upload}"),
                ("DELETE", f"/v2/{name}/blobs/uploads/{upload}"),
                ("GET", f"/v2/{name}/referrers/{digest}?artifactType=%ff"),
            ]
        )
        headers: dict[str, str] = {}
        for header, values in (
            ("Range", [f"bytes=0-{HUGE}", "bytes=-0", "bytes=5-1", "items=1-2", "bytes=1-2,3-4"]),
            ("Content-Range", [f"0-{HUGE}", "5-1", "abc", "0-9", "-1-2"]),
            ("Content-Type", ["application/vnd.oci.image.manifest.v1+json", "text/html", "\x7f"]),
            ("Accept", ["*/*", "a" * 2000, ""]),
        ):
            if self.rng.random() < 0.3:
                headers[header] = self.rng.choice(values)
        body = self.rng.choice(
            [
                b"",
                b"{}",
                b'{"schemaVersion":2,"layers":' + b"[" * 5000 + b"]" * 5000 + b"}",
                json.dumps({"schemaVersion": 2, "config": {"size": 10**30}}).encode(),
                b"\xff" * 100,
                LAYER,
            ]
        )
        return method, path, headers, body


@dataclass
class HonestClient:
    """Pulls the same image in a loop beside the attack; every answer must be right."""

    url: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with RegistryClient(self.url, timeout=10) as client:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    response = client.request("GET", f"/v2/{NAME}/blobs/{digest_of(LAYER)}")
                    if response.status_code != 200 or response.content != LAYER:
                        self.errors.append(f"{response.status_code}")
                except Exception as exc:
                    self.errors.append(repr(exc))
                self.latencies.append(time.monotonic() - started)
                time.sleep(0.01)

    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[int(len(ordered) * 0.99)] if ordered else 0.0


def _checked(status: int, body: bytes, check: Callable[[bytes], str], what: str) -> str:
    """The error code of a 4xx answer (the protocol's own form, parseable), else ""."""
    assert status < 500, f"{what}: {status} {body[:300]!r}"
    if status >= 400 and body:
        return check(body)
    return ""


def _aws_error(body: bytes) -> str:
    document = json.loads(body)
    assert isinstance(document["__type"], str)
    return document["__type"]


ROUNDS = 1000  # bench.abuse runs the same generator for longer


def test_seeded_malformed_requests_get_protocol_errors_never_500(server: ServerProcess) -> None:
    generator = Generator(seed=20261207)
    statuses: Counter[int] = Counter()
    codes: Counter[str] = Counter()
    honest = HonestClient(server.url)
    thread = threading.Thread(target=honest.run)
    thread.start()
    sent = 0
    try:
        for _ in range(ROUNDS):
            operation, headers, body = generator.api_request()
            response = raw_request(server.port, "POST", "/", headers, body=body)
            statuses[response.status] += 1
            codes[_checked(response.status, response.body, _aws_error, operation)] += 1
            method, path, oci_headers, oci_body = generator.oci_request()
            if method in ("GET", "HEAD", "DELETE"):
                oci_body = b""
            response = raw_request(
                server.port,
                method,
                path.encode().decode("latin-1"),
                {k: v.encode().decode("latin-1") for k, v in oci_headers.items()},
                body=oci_body,
            )
            statuses[response.status] += 1
            if method != "HEAD":
                codes[
                    _checked(response.status, response.body, oci_error, f"{method} {path[:80]}")
                ] += 1
            else:
                assert response.status < 500, f"{method} {path[:80]}: {response.status}"
            sent += 2
    finally:
        honest.stop.set()
        thread.join()
    assert sent == 2 * ROUNDS
    # The generator reaches past routing: successes, and errors of many kinds.
    assert statuses[200] + statuses[201] + statuses[202] > 0, statuses
    assert len(codes) >= 10, codes
    assert honest.errors == []
    assert honest.latencies, "the honest client made no request"
    print(f"statuses: {dict(sorted(statuses.items()))}; codes: {dict(codes.most_common())}")
    print(f"honest client: {len(honest.latencies)} pulls, p99 {honest.p99() * 1000:.1f} ms")


def test_an_address_refused_in_a_loop_is_slowed_down(iam_server: IamServer) -> None:
    """Bad credentials again and again from one address: past the burst (20), answers wait
    a second or more each (more the further past it). Another address, meanwhile, is
    answered at once."""
    bad = {"Authorization": "Basic QVdTOm5vdC1hLXRva2Vu"}  # AWS:not-a-token
    path = "/v2/team/app/tags/list"
    port = iam_server.process.port

    def refused_from(address: str) -> float:
        with connect(port, address) as sock:
            sock.sendall(request_head("GET", path, bad))
            started = time.monotonic()
            assert _response_status(sock) == 401
            return time.monotonic() - started

    waits = [refused_from("127.0.0.3") for _ in range(30)]
    assert max(waits[:15]) < 0.5  # within the burst
    # Past it, a wait; after which the bucket has refilled at 10 a second: a client refused
    # in a loop gets about 10 quick answers a second, the rest waiting.
    assert any(wait >= 0.9 for wait in waits[20:])
    assert refused_from("127.0.0.4") < 0.5
    # The anonymous challenge every client starts with is not a refusal.
    for _ in range(30):
        with connect(port, "127.0.0.5") as sock:
            sock.sendall(request_head("GET", "/v2/"))
            started = time.monotonic()
            assert _response_status(sock) == 401
            assert time.monotonic() - started < 0.5

"""Pull-through cache in front of a real CNCF distribution: the first pull imports, later
pulls are served from the cache, also with the upstream stopped.

The upstream is Debian's ``docker-registry`` on a free loopback port (an OCI registry URL, the
documented extension: no ``upstreamRegistry``); skopeo pulls from moorage, and digests are
compared with ``skopeo inspect --raw`` of the upstream.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest

from tests.e2e.aws import REGION, Credentials, admin_init, aws_cli, aws_cli_v2, ecr_client
from tests.e2e.distribution import Distribution, installed
from tests.e2e.oci_layout import Layout, build_layout
from tests.e2e.server import ServerProcess, run_cli
from tests.e2e.test_skopeo import skopeo, skopeo_installed  # noqa: F401

pytestmark = pytest.mark.e2e

REFRESH = 2.0  # seconds a cached tag is served before the upstream is asked again


@pytest.fixture(scope="module", autouse=True)
def distribution_installed() -> None:
    # Fail, never skip: a skipped cache test would hide that the cache was not proven.
    if not installed():
        pytest.fail("docker-registry is not installed; scripts/test installs it")


class Setup:
    def __init__(self, upstream: Distribution, moorage: ServerProcess, admin: Credentials):
        self.upstream = upstream
        self.moorage = moorage
        self.admin = admin
        self.ecr = ecr_client(moorage.url, admin)

    def creds(self) -> str:
        token = self.ecr.get_authorization_token()["authorizationData"][0]
        return base64.b64decode(token["authorizationToken"]).decode()

    def pull(self, reference: str, into: Path, *, all_images: bool = True) -> None:
        skopeo(
            "copy",
            *(["--all"] if all_images else []),
            "--src-tls-verify=false",
            "--src-creds",
            self.creds(),
            f"docker://{self.moorage.host}/{reference}",
            f"oci:{into}:pulled",
        )

    def raw(self, reference: str) -> bytes:
        return skopeo(
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            self.creds(),
            f"docker://{self.moorage.host}/{reference}",
        ).stdout

    def upstream_raw(self, reference: str) -> bytes:
        return skopeo(
            "inspect", "--raw", "--tls-verify=false", f"docker://{self.upstream.host}/{reference}"
        ).stdout


def push_upstream(upstream: Distribution, layout: Layout, reference: str) -> None:
    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        f"oci:{layout.path}:{layout.tag}",
        f"docker://{upstream.host}/{reference}",
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("cache")
    upstream = Distribution(root / "upstream").start()
    data_dir = root / "moorage"
    admin = admin_init(data_dir)
    moorage = ServerProcess(
        data_dir=data_dir,
        emulator=False,
        extra_args=["--cache-refresh-interval", str(REFRESH)],
    ).start()
    try:
        yield Setup(upstream, moorage, admin)
    finally:
        upstream.stop()
        assert moorage.stop() == 0, moorage.log()


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Layout]:
    root = tmp_path_factory.mktemp("layouts")
    return {
        name: build_layout(root / name, file_size=8 * 1024, seed=seed)
        for name, seed in (("first", 1), ("second", 2), ("third", 3), ("fourth", 4))
    }


def test_rule_operations(setup: Setup) -> None:
    ecr = setup.ecr
    created = ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="rules/", upstreamRegistryUrl=setup.upstream.url
    )
    assert created["ecrRepositoryPrefix"] == "rules"
    assert created["upstreamRegistryUrl"] == setup.upstream.url
    assert created["upstreamRepositoryPrefix"] == "ROOT"
    with pytest.raises(ecr.exceptions.PullThroughCacheRuleAlreadyExistsException):
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="rules", upstreamRegistryUrl=setup.upstream.url
        )
    with pytest.raises(ecr.exceptions.UnsupportedUpstreamRegistryException):
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="quay",
            upstreamRegistryUrl=setup.upstream.url,
            upstreamRegistry="quay",
        )
    with pytest.raises(ecr.exceptions.SecretNotFoundException):
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="private",
            upstreamRegistryUrl=setup.upstream.url,
            credentialArn="arn:aws:secretsmanager:us-east-1:123456789012:secret:"
            "ecr-pullthroughcache/absent",
        )
    (described,) = ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["rules"])[
        "pullThroughCacheRules"
    ]
    assert described["ecrRepositoryPrefix"] == "rules"
    assert described["createdAt"] == created["createdAt"]
    with pytest.raises(ecr.exceptions.PullThroughCacheRuleNotFoundException):
        ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["absent"])
    valid = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="rules")
    assert (valid["isValid"], valid.get("failure")) == (True, None)
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="down", upstreamRegistryUrl="http://127.0.0.1:1"
    )
    invalid = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="down")
    assert invalid["isValid"] is False
    assert "could not be used" in invalid["failure"]
    deleted = ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="down")
    assert deleted["ecrRepositoryPrefix"] == "down"
    with pytest.raises(ecr.exceptions.PullThroughCacheRuleNotFoundException):
        ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="down")
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="rules")
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []


def test_first_pull_imports_and_a_pull_with_the_upstream_down_still_works(
    setup: Setup, layouts: dict[str, Layout], tmp_path: Path
) -> None:
    push_upstream(setup.upstream, layouts["first"], "library/app:v1")
    # The AWS CLI, as a user would create the rule; a loopback host is plain HTTP, as
    # docker has it. (v2: v1 would fetch an http:// parameter and pass what it read.)
    result = aws_cli(
        setup.moorage.url,
        setup.admin,
        tmp_path,
        "ecr",
        "create-pull-through-cache-rule",
        "--ecr-repository-prefix",
        "hub",
        "--upstream-registry-url",
        setup.upstream.host,
        cli=aws_cli_v2(),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ecrRepositoryPrefix"] == "hub"

    # Repositories the cache creates get its PULL_THROUGH_CACHE template's settings.
    setup.ecr.create_repository_creation_template(
        prefix="hub",
        appliedFor=["PULL_THROUGH_CACHE"],
        resourceTags=[{"Key": "cached", "Value": "yes"}],
    )
    setup.pull("hub/library/app:v1", tmp_path / "first")
    upstream_raw = setup.upstream_raw("library/app:v1")
    assert setup.raw("hub/library/app:v1") == upstream_raw
    (repository,) = setup.ecr.describe_repositories(repositoryNames=["hub/library/app"])[
        "repositories"
    ]
    assert repository["repositoryName"] == "hub/library/app"
    assert setup.ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"] == [
        {"Key": "cached", "Value": "yes"}
    ]
    images = setup.ecr.describe_images(repositoryName="hub/library/app")["imageDetails"]
    index_digest = "sha256:" + hashlib.sha256(upstream_raw).hexdigest()
    # The index and each of its children were imported.
    children = [m["digest"] for m in json.loads(upstream_raw)["manifests"]]
    assert {i["imageDigest"] for i in images} == {index_digest, *children}

    setup.upstream.stop()
    try:
        time.sleep(REFRESH + 0.5)  # the tag is due for a check, and the upstream is down
        setup.pull("hub/library/app:v1", tmp_path / "again")
        assert setup.raw("hub/library/app:v1") == upstream_raw
        # Never imported, and nothing to serve instead: the registry says it is unavailable.
        result = skopeo(
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            setup.creds(),
            f"docker://{setup.moorage.host}/hub/library/other:v1",
            check=False,
        )
        assert result.returncode != 0
        assert b"503" in result.stderr or b"unavailable" in result.stderr.lower(), result.stderr
    finally:
        setup.upstream.start()


def test_pushes_into_a_cache_are_refused(setup: Setup, layouts: dict[str, Layout]) -> None:
    setup.ecr.create_repository(repositoryName="hub/mine")
    result = skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        setup.creds(),
        f"oci:{layouts['first'].path}:{layouts['first'].tag}",
        f"docker://{setup.moorage.host}/hub/mine:v1",
        check=False,
    )
    assert result.returncode != 0
    assert b"denied" in result.stderr.lower(), result.stderr


def test_a_retagged_upstream_is_seen_after_the_refresh_interval(
    setup: Setup, layouts: dict[str, Layout], tmp_path: Path
) -> None:
    push_upstream(setup.upstream, layouts["first"], "library/moving:v1")
    first = setup.raw("hub/library/moving:v1")
    push_upstream(setup.upstream, layouts["second"], "library/moving:v1")
    second = setup.upstream_raw("library/moving:v1")
    assert first != second
    # Within the refresh interval the cached tag is served without asking the upstream.
    assert setup.raw("hub/library/moving:v1") == first
    time.sleep(REFRESH + 0.5)
    assert setup.raw("hub/library/moving:v1") == second
    setup.pull("hub/library/moving:v1", tmp_path / "moved")
    # A tag deleted upstream: the cached copy stays served.
    digest = "sha256:" + hashlib.sha256(second).hexdigest()
    request = f"{setup.upstream.url}/v2/library/moving/manifests/{digest}"
    urllib.request.urlopen(urllib.request.Request(request, method="DELETE"), timeout=10).close()
    time.sleep(REFRESH + 0.5)
    assert setup.raw("hub/library/moving:v1") == second


def test_concurrent_first_pulls_fetch_each_blob_once(
    setup: Setup, layouts: dict[str, Layout], tmp_path: Path
) -> None:
    push_upstream(setup.upstream, layouts["third"], "library/busy:v1")
    before = len(setup.upstream.requests("GET", "/blobs/"))

    def pull(n: int) -> None:
        setup.pull("hub/library/busy:v1", tmp_path / f"pull-{n}")

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(pull, range(10)))
    fetched = collections.Counter(
        line.split()[1].rsplit("/", 1)[1]
        for line in setup.upstream.requests("GET", "/blobs/")[before:]
    )
    assert fetched, "nothing was fetched from the upstream"
    assert set(fetched.values()) == {1}, fetched
    # Every pull got the upstream's image.
    index = json.loads(setup.upstream_raw("library/busy:v1"))
    for n in range(10):
        pulled = json.loads((tmp_path / f"pull-{n}" / "index.json").read_text())
        assert len(pulled["manifests"]) == 1
    assert len(index["manifests"]) == 2


def test_digests_are_served_without_the_upstream(setup: Setup, layouts: dict[str, Layout]) -> None:
    raw = setup.raw("hub/library/app:v1")
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    heads_before = len(setup.upstream.requests(None, "/manifests/"))
    assert setup.raw(f"hub/library/app@{digest}") == raw
    assert len(setup.upstream.requests(None, "/manifests/")) == heads_before


def test_an_upstream_that_needs_a_login_takes_it_from_a_secret(
    setup: Setup, layouts: dict[str, Layout], tmp_path: Path
) -> None:
    """credentialArn as ECR takes it: a Secrets Manager secret named ecr-pullthroughcache/...
    holding username and accessToken; Validate says whether the login works."""
    private = Distribution(tmp_path / "private", login=("puller", "s3cret-token")).start()
    try:
        skopeo(
            "copy",
            "--all",
            "--dest-tls-verify=false",
            "--dest-creds",
            "puller:s3cret-token",
            f"oci:{layouts['first'].path}:{layouts['first'].tag}",
            f"docker://{private.host}/team/app:v1",
        )
        secrets = boto3.client(
            "secretsmanager",
            endpoint_url=setup.moorage.url,
            region_name=REGION,
            aws_access_key_id=setup.admin.access_key_id,
            aws_secret_access_key=setup.admin.secret_access_key,
        )
        good = secrets.create_secret(
            Name="ecr-pullthroughcache/private",
            SecretString=json.dumps({"username": "puller", "accessToken": "s3cret-token"}),
        )["ARN"]
        bad = secrets.create_secret(
            Name="ecr-pullthroughcache/wrong",
            SecretString=json.dumps({"username": "puller", "accessToken": "wrong"}),
        )["ARN"]
        # Without credentials the rule exists, and Validate says the login fails.
        setup.ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="private", upstreamRegistryUrl=private.host, credentialArn=bad
        )
        invalid = setup.ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="private")
        assert invalid["isValid"] is False, invalid
        assert invalid["credentialArn"] == bad
        setup.ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="private", credentialArn=good)
        valid = setup.ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="private")
        assert valid["isValid"] is True, valid
        setup.pull("private/team/app:v1", tmp_path / "pulled")
        assert (
            setup.raw("private/team/app:v1")
            == skopeo(
                "inspect",
                "--raw",
                "--tls-verify=false",
                "--creds",
                "puller:s3cret-token",
                f"docker://{private.host}/team/app:v1",
            ).stdout
        )
        # A secret that does not hold username and accessToken cannot be used.
        malformed = secrets.create_secret(
            Name="ecr-pullthroughcache/malformed", SecretString="not json"
        )["ARN"]
        with pytest.raises(setup.ecr.exceptions.UnableToAccessSecretException):
            setup.ecr.create_pull_through_cache_rule(
                ecrRepositoryPrefix="malformed",
                upstreamRegistryUrl=private.host,
                credentialArn=malformed,
            )
    finally:
        private.stop()


def test_the_cli_says_where_a_cached_image_came_from(setup: Setup) -> None:
    result = run_cli("repo", "images", "hub/library/app", "--data-dir", str(setup.moorage.data_dir))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    raw = setup.raw("hub/library/app:v1")
    (tagged,) = [line for line in lines if "  v1  " in line]
    assert tagged.startswith("sha256:" + hashlib.sha256(raw).hexdigest())
    assert f"cached from {setup.upstream.url}/library/app at " in tagged
    assert all("cached from" in line for line in lines)


def test_the_platforms_no_client_pulled_are_fetched_in_the_background(
    setup: Setup, layouts: dict[str, Layout], tmp_path: Path
) -> None:
    """As ECR imports the whole image: a pull of one platform leaves a cache-fill job that
    fetches the others' blobs, so that they pull with the upstream stopped."""
    push_upstream(setup.upstream, layouts["fourth"], "library/multi:v1")
    setup.pull("hub/library/multi:v1", tmp_path / "one", all_images=False)
    index = json.loads(setup.upstream_raw("library/multi:v1"))
    layers = []
    for child in index["manifests"]:
        raw = setup.raw(f"hub/library/multi@{child['digest']}")
        layers += [layer["digest"] for layer in json.loads(raw)["layers"]]
    deadline = time.monotonic() + 30
    while True:
        answer = setup.ecr.batch_check_layer_availability(
            repositoryName="hub/library/multi", layerDigests=layers
        )
        if {layer["layerAvailability"] for layer in answer["layers"]} == {"AVAILABLE"}:
            break
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)
    jobs = run_cli(
        "jobs", "list", "--kind", "cache-fill", "--data-dir", str(setup.moorage.data_dir)
    )
    assert jobs.returncode == 0, jobs.stderr
    assert "succeeded" in jobs.stdout, jobs.stdout
    setup.upstream.stop()
    try:
        setup.pull("hub/library/multi:v1", tmp_path / "all")
    finally:
        setup.upstream.start()

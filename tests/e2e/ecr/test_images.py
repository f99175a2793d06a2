"""Image operations of the ECR API over boto3 and the AWS CLI, against a real server with IAM
on: PutImage, BatchGetImage, BatchDeleteImage, ListImages, DescribeImages, ListImageReferrers;
and the round trips between the API and ``/v2/``, which share one implementation."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.aws import aws_cli, aws_json, ecr_client
from tests.e2e.client import (
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
    digest_of,
    image_index,
    image_manifest,
)
from tests.e2e.conftest import IamServer
from tests.e2e.ecr.helpers import aws_error, login_password
from tests.e2e.ecr.layer_api import config_blob, put_image, upload_blob

pytestmark = pytest.mark.e2e

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def ecr(iam_server: IamServer) -> Any:
    return ecr_client(iam_server.url, iam_server.admin)


@pytest.fixture(scope="module")
def raw(iam_server: IamServer) -> Any:
    """A client that sends what it is given, so that the server's own checks answer."""
    return ecr_client(iam_server.url, iam_server.admin, parameter_validation=False)


@pytest.fixture
def v2(ecr: Any, iam_server: IamServer) -> Any:
    """A /v2/ client logged in with GetAuthorizationToken's password."""
    with RegistryClient(iam_server.url) as client:
        client.session.auth = ("AWS", login_password(ecr))
        yield client


def new_repository(ecr: Any, name: str, **settings: Any) -> str:
    ecr.create_repository(repositoryName=name, **settings)
    return name


def image(ecr: Any, repository: str, seed: str, tag: str | None = None) -> tuple[str, bytes]:
    return put_image(ecr, repository, config_blob(seed), [f"layer {seed}".encode()], tag)


# -- PutImage ----------------------------------------------------------------------------------


def test_put_image_returns_the_image(ecr: Any) -> None:
    repository = new_repository(ecr, "images/put")
    config, layer = config_blob("put"), b"put layer"
    upload_blob(ecr, repository, config)
    upload_blob(ecr, repository, layer)
    manifest = image_manifest(config, [layer])
    answer = ecr.put_image(
        repositoryName=repository,
        imageManifest=manifest.decode(),
        imageTag="v1",
        imageDigest=digest_of(manifest),
    )["image"]
    assert answer == {
        "registryId": ecr.describe_registry()["registryId"],
        "repositoryName": repository,
        "imageId": {"imageDigest": digest_of(manifest), "imageTag": "v1"},
        "imageManifest": manifest.decode(),
        "imageManifestMediaType": OCI_MANIFEST,
    }


def test_put_image_error_precedence(ecr: Any, raw: Any) -> None:
    repository = new_repository(ecr, "images/precedence")
    config, layer = config_blob("precedence"), b"precedence layer"
    manifest = image_manifest(config, [layer])
    document = json.loads(manifest)
    del document["mediaType"]
    bare = json.dumps(document)

    # 0. the tag's charset, checked like any parameter, before everything else
    code, message = aws_error(
        raw.put_image, repositoryName=repository, imageManifest=bare, imageTag="no/slash"
    )
    assert code == "InvalidParameterException"
    assert message == (
        "Invalid parameter at 'imageTag' failed to satisfy constraint: "
        "'must satisfy regular expression '[a-zA-Z0-9-_.]+''"
    )
    # 1. no mediaType in the document and none given
    code, message = aws_error(
        ecr.put_image, repositoryName=repository, imageManifest=bare, imageDigest="sha256:0"
    )
    assert code == "InvalidParameterException"
    # ECR's own words
    assert message == "image manifest mediatype not provided in manifest or parameter"
    # 2. the digest given is not the manifest's
    code, _ = aws_error(
        ecr.put_image,
        repositoryName=repository,
        imageManifest=bare,
        imageManifestMediaType=OCI_MANIFEST,
        imageDigest=digest_of(b"something else"),
    )
    assert code == "ImageDigestDoesNotMatchException"
    # 3. blobs not in this repository
    code, message = aws_error(
        ecr.put_image,
        repositoryName=repository,
        imageManifest=bare,
        imageManifestMediaType=OCI_MANIFEST,
    )
    assert code == "LayersNotFoundException"
    assert digest_of(config) in message
    assert digest_of(layer) in message
    # 4. an index whose manifests are not in this repository
    index = image_index([manifest])
    code, _ = aws_error(ecr.put_image, repositoryName=repository, imageManifest=index.decode())
    assert code == "ReferencedImagesNotFoundException"
    # A malformed manifest is an invalid parameter.
    code, _ = aws_error(ecr.put_image, repositoryName=repository, imageManifest="{not json")
    assert code == "InvalidParameterException"
    code, _ = aws_error(
        ecr.put_image, repositoryName="images/missing", imageManifest=manifest.decode()
    )
    assert code == "RepositoryNotFoundException"
    # With its mediaType given, the bare document is stored, under the digest of its bytes.
    upload_blob(ecr, repository, config)
    upload_blob(ecr, repository, layer)
    stored = ecr.put_image(
        repositoryName=repository, imageManifest=bare, imageManifestMediaType=OCI_MANIFEST
    )["image"]
    assert stored["imageId"] == {"imageDigest": digest_of(bare.encode())}


def test_put_image_again_retag_and_already_exists(ecr: Any) -> None:
    repository = new_repository(ecr, "images/retag")
    digest, manifest = image(ecr, repository, "retag", tag="v1")
    # 5. same digest, no tag change
    code, message = aws_error(
        ecr.put_image, repositoryName=repository, imageManifest=manifest.decode(), imageTag="v1"
    )
    assert code == "ImageAlreadyExistsException"
    assert digest in message
    code, message = aws_error(
        ecr.put_image, repositoryName=repository, imageManifest=manifest.decode()
    )
    assert code == "ImageAlreadyExistsException"
    assert message == (
        f"Image with digest '{digest}' already exists in the repository with name "
        f"'{repository}' in registry with id '{ecr.describe_registry()['registryId']}'"
    )
    # 6. same digest, a new tag: ECR's documented retag (BatchGetImage then PutImage)
    fetched = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": "v1"}])
    text = fetched["images"][0]["imageManifest"]
    retagged = ecr.put_image(repositoryName=repository, imageManifest=text, imageTag="stable")
    assert retagged["image"]["imageId"] == {"imageDigest": digest, "imageTag": "stable"}
    details = ecr.describe_images(repositoryName=repository)["imageDetails"]
    # An image's tags come in the order they were put on it, not sorted.
    assert [(d["imageDigest"], d["imageTags"]) for d in details] == [(digest, ["v1", "stable"])]
    ecr.put_image(repositoryName=repository, imageManifest=text, imageTag="a-latest")
    (detail,) = ecr.describe_images(repositoryName=repository)["imageDetails"]
    assert detail["imageTags"] == ["v1", "stable", "a-latest"]
    ecr.batch_delete_image(repositoryName=repository, imageIds=[{"imageTag": "a-latest"}])
    # 7. a mutable tag moves; the image it left keeps its other tags
    other, _ = image(ecr, repository, "retag-2", tag="v1")
    tags = {
        d["imageDigest"]: d.get("imageTags")
        for d in ecr.describe_images(repositoryName=repository)["imageDetails"]
    }
    assert tags == {digest: ["stable"], other: ["v1"]}


def test_put_image_to_an_immutable_tag(ecr: Any) -> None:
    repository = new_repository(ecr, "images/immutable", imageTagMutability="IMMUTABLE")
    digest, manifest = image(ecr, repository, "immutable-1", tag="v1")
    config, layer = config_blob("immutable-2"), b"layer immutable-2"
    upload_blob(ecr, repository, config)
    upload_blob(ecr, repository, layer)
    code, message = aws_error(
        ecr.put_image,
        repositoryName=repository,
        imageManifest=image_manifest(config, [layer]).decode(),
        imageTag="v1",
    )
    assert code == "ImageTagAlreadyExistsException"
    assert message.startswith(
        f"The image tag 'v1' already exists in the '{repository}' repository and cannot be "
        "overwritten"
    )
    # Nothing of the refused push was stored.
    listed = ecr.list_images(repositoryName=repository)["imageIds"]
    assert listed == [{"imageDigest": digest, "imageTag": "v1"}]
    # Pushing the same image again under its tag is no overwrite.
    code, _ = aws_error(
        ecr.put_image, repositoryName=repository, imageManifest=manifest.decode(), imageTag="v1"
    )
    assert code == "ImageAlreadyExistsException"


# -- BatchGetImage -----------------------------------------------------------------------------


def test_batch_get_image_with_failures(ecr: Any, raw: Any) -> None:
    repository = new_repository(ecr, "images/get")
    digest, manifest = image(ecr, repository, "get", tag="v1")
    answer = raw.batch_get_image(
        repositoryName=repository,
        imageIds=[
            {"imageTag": "v1"},
            {"imageDigest": digest},
            {"imageTag": "v2"},
            {"imageDigest": "not-a-digest"},
            {"imageTag": "no/slash"},
            {},
            {"imageDigest": digest, "imageTag": "v1"},
            {"imageDigest": digest_of(b"other"), "imageTag": "v1"},
        ],
    )
    assert [i["imageId"] for i in answer["images"]] == [
        {"imageDigest": digest, "imageTag": "v1"},
        {"imageDigest": digest},
        {"imageDigest": digest, "imageTag": "v1"},
    ]
    assert all(i["imageManifest"] == manifest.decode() for i in answer["images"])
    assert all(i["imageManifestMediaType"] == OCI_MANIFEST for i in answer["images"])
    failures = [(f["imageId"], f["failureCode"], f["failureReason"]) for f in answer["failures"]]
    assert failures[0] == ({"imageTag": "v2"}, "ImageNotFound", "Requested image not found")
    assert failures[1][:2] == ({"imageDigest": "not-a-digest"}, "InvalidImageDigest")
    assert failures[2][:2] == ({"imageTag": "no/slash"}, "InvalidImageTag")
    assert failures[3] == (
        {},
        "MissingDigestAndTag",
        "Invalid request parameters: both tag and digest cannot be null",
    )
    assert failures[4][1] == "ImageTagDoesNotMatchDigest"
    code, _ = aws_error(
        ecr.batch_get_image, repositoryName="images/none", imageIds=[{"imageTag": "v1"}]
    )
    assert code == "RepositoryNotFoundException"


def test_batch_get_image_accepted_media_types(ecr: Any) -> None:
    """Decision: no conversion between formats. An image whose type the caller does not
    accept is an ``ImageNotFound`` failure (ECR's ImageFailureCode has no better member;
    ``UnsupportedImageType`` is not one), never a manifest in a type it cannot read."""
    repository = new_repository(ecr, "images/accept")
    digest, _ = image(ecr, repository, "accept", tag="v1")
    accepted = ecr.batch_get_image(
        repositoryName=repository,
        imageIds=[{"imageTag": "v1"}],
        acceptedMediaTypes=[DOCKER_MANIFEST, OCI_MANIFEST],
    )
    assert [i["imageId"]["imageDigest"] for i in accepted["images"]] == [digest]
    refused = ecr.batch_get_image(
        repositoryName=repository,
        imageIds=[{"imageTag": "v1"}],
        acceptedMediaTypes=[DOCKER_MANIFEST],
    )
    assert refused["images"] == []
    assert refused["failures"][0]["failureCode"] == "ImageNotFound"
    assert OCI_MANIFEST in refused["failures"][0]["failureReason"]


def test_batch_get_image_records_a_pull(ecr: Any) -> None:
    repository = new_repository(ecr, "images/pulled")
    image(ecr, repository, "pulled", tag="v1")
    before = ecr.describe_images(repositoryName=repository)["imageDetails"][0]
    assert "lastRecordedPullTime" not in before
    ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": "v1"}])
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=10)
    while datetime.datetime.now() < deadline:
        after = ecr.describe_images(repositoryName=repository)["imageDetails"][0]
        if "lastRecordedPullTime" in after:
            break
        time.sleep(0.05)  # the pull is recorded in the background
    assert after["lastRecordedPullTime"] >= before["imagePushedAt"]


# -- BatchDeleteImage --------------------------------------------------------------------------


def test_batch_delete_by_tag_and_by_digest(ecr: Any) -> None:
    repository = new_repository(ecr, "images/delete")
    first, manifest = image(ecr, repository, "delete-1", tag="v1")
    ecr.put_image(repositoryName=repository, imageManifest=manifest.decode(), imageTag="v1.0")
    second, _ = image(ecr, repository, "delete-2", tag="v2")
    ecr.put_image(
        repositoryName=repository,
        imageManifest=image_manifest(config_blob("delete-2"), [b"layer delete-2"]).decode(),
        imageTag="latest",
    )
    # By tag: only the tag goes while the image has others...
    answer = ecr.batch_delete_image(repositoryName=repository, imageIds=[{"imageTag": "v1"}])
    assert answer == {
        "imageIds": [{"imageDigest": first, "imageTag": "v1"}],
        "failures": [],
        "ResponseMetadata": answer["ResponseMetadata"],
    }
    assert [
        d["imageDigest"] for d in ecr.describe_images(repositoryName=repository)["imageDetails"]
    ] == sorted([first, second])
    # ... and the image goes with its last tag.
    ecr.batch_delete_image(repositoryName=repository, imageIds=[{"imageTag": "v1.0"}])
    remaining = ecr.describe_images(repositoryName=repository)["imageDetails"]
    assert [d["imageDigest"] for d in remaining] == [second]
    # By digest: the image and every tag, each reported.
    answer = ecr.batch_delete_image(repositoryName=repository, imageIds=[{"imageDigest": second}])
    assert sorted(answer["imageIds"], key=lambda i: i["imageTag"]) == [
        {"imageDigest": second, "imageTag": "latest"},
        {"imageDigest": second, "imageTag": "v2"},
    ]
    assert ecr.list_images(repositoryName=repository)["imageIds"] == []


def test_batch_delete_untagged_and_with_both_ids(ecr: Any) -> None:
    repository = new_repository(ecr, "images/delete-both")
    untagged, _ = image(ecr, repository, "untagged")
    tagged, _ = image(ecr, repository, "tagged", tag="v1")
    answer = ecr.batch_delete_image(
        repositoryName=repository,
        imageIds=[{"imageDigest": untagged}, {"imageDigest": tagged, "imageTag": "v1"}],
    )
    assert answer["imageIds"] == [
        {"imageDigest": untagged},
        {"imageDigest": tagged, "imageTag": "v1"},
    ]
    assert answer["failures"] == []


def test_batch_delete_failures_answer_200(ecr: Any, raw: Any) -> None:
    repository = new_repository(ecr, "images/delete-failures")
    digest, _ = image(ecr, repository, "failures", tag="v1")
    answer = raw.batch_delete_image(
        repositoryName=repository,
        imageIds=[
            {"imageDigest": digest, "imageTag": "v2"},  # v2 does not exist
            {"imageDigest": digest_of(b"other"), "imageTag": "v1"},
            {},
            {"imageDigest": "sha256:invalid-digest"},
            {"imageTag": "bad tag"},
            {"imageDigest": digest_of(b"never pushed")},
        ],
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert answer["imageIds"] == []
    codes = [(f["failureCode"], f["failureReason"]) for f in answer["failures"]]
    assert codes == [
        ("ImageNotFound", "Requested image not found"),
        ("ImageTagDoesNotMatchDigest", codes[1][1]),
        ("MissingDigestAndTag", "Invalid request parameters: both tag and digest cannot be null"),
        (
            "InvalidImageDigest",
            "Invalid request parameters: image digest should satisfy the regex "
            "'[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
        ),
        ("InvalidImageTag", codes[4][1]),
        ("ImageNotFound", "Requested image not found"),
    ]
    assert ecr.list_images(repositoryName=repository)["imageIds"] == [
        {"imageDigest": digest, "imageTag": "v1"}
    ]


def test_an_image_an_index_lists_is_not_deleted(ecr: Any) -> None:
    repository = new_repository(ecr, "images/multi-arch")
    child, manifest = image(ecr, repository, "child")
    index = image_index([manifest])
    listed = ecr.put_image(repositoryName=repository, imageManifest=index.decode(), imageTag="v1")
    assert listed["image"]["imageManifestMediaType"] == OCI_INDEX
    answer = ecr.batch_delete_image(repositoryName=repository, imageIds=[{"imageDigest": child}])
    failure = answer["failures"][0]
    assert failure["failureCode"] == "ImageReferencedByManifestList"
    assert digest_of(index) in failure["failureReason"]
    # Delete the list first, then the child goes.
    ecr.batch_delete_image(repositoryName=repository, imageIds=[{"imageTag": "v1"}])
    answer = ecr.batch_delete_image(repositoryName=repository, imageIds=[{"imageDigest": child}])
    assert answer["imageIds"] == [{"imageDigest": child}]


# -- ListImages and DescribeImages -------------------------------------------------------------


def test_list_images_one_entry_per_tag_and_filters(ecr: Any) -> None:
    repository = new_repository(ecr, "images/list")
    tagged, manifest = image(ecr, repository, "list-1", tag="a")
    ecr.put_image(repositoryName=repository, imageManifest=manifest.decode(), imageTag="b")
    untagged, _ = image(ecr, repository, "list-2")
    everything = ecr.list_images(repositoryName=repository)["imageIds"]
    assert sorted(everything, key=lambda i: (i["imageDigest"], i.get("imageTag", ""))) == sorted(
        [
            {"imageDigest": tagged, "imageTag": "a"},
            {"imageDigest": tagged, "imageTag": "b"},
            {"imageDigest": untagged},
        ],
        key=lambda i: (i["imageDigest"], i.get("imageTag", "")),
    )
    only_tagged = ecr.list_images(repositoryName=repository, filter={"tagStatus": "TAGGED"})
    assert {i.get("imageTag") for i in only_tagged["imageIds"]} == {"a", "b"}
    only_untagged = ecr.list_images(repositoryName=repository, filter={"tagStatus": "UNTAGGED"})
    assert only_untagged["imageIds"] == [{"imageDigest": untagged}]
    archived = ecr.list_images(repositoryName=repository, filter={"imageStatus": "ARCHIVED"})
    assert archived["imageIds"] == []


def test_list_images_pages(ecr: Any, raw: Any) -> None:
    repository = new_repository(ecr, "images/pages")
    _, manifest = image(ecr, repository, "pages-1", tag="t0")
    for index in range(1, 5):
        ecr.put_image(
            repositoryName=repository, imageManifest=manifest.decode(), imageTag=f"t{index}"
        )
    image(ecr, repository, "pages-2")
    seen: list[dict[str, str]] = []
    token: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"repositoryName": repository, "maxResults": 2}
        if token:
            params["nextToken"] = token
        page = ecr.list_images(**params)
        pages += 1
        assert len(page["imageIds"]) <= 2
        seen.extend(page["imageIds"])
        token = page.get("nextToken")
        if not token:
            break
    assert pages == 3
    assert len(seen) == 6
    assert len({json.dumps(i, sort_keys=True) for i in seen}) == 6
    # boto3's paginator drives the same tokens.
    paginator = ecr.get_paginator("list_images")
    listed = [
        i
        for p in paginator.paginate(repositoryName=repository, PaginationConfig={"PageSize": 4})
        for i in p["imageIds"]
    ]
    assert listed == seen
    # A token that is not one, or is another operation's, is refused.
    for bad in ("garbage!", "eyJrIjoiRGVzY3JpYmVSZXBvc2l0b3JpZXMiLCJjIjpbImEiXX0"):
        code, message = aws_error(ecr.list_images, repositoryName=repository, nextToken=bad)
        assert code == "InvalidParameterException"
        assert "nextToken" in message
    code, _ = aws_error(raw.list_images, repositoryName=repository, maxResults=1001)
    assert code == "InvalidParameterException"


def test_describe_images_details(ecr: Any) -> None:
    repository = new_repository(ecr, "images/describe")
    config, layer = config_blob("describe"), b"x" * 1000
    before = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=2)
    digest, manifest = put_image(ecr, repository, config, [layer], tag="z-last")
    ecr.put_image(repositoryName=repository, imageManifest=manifest.decode(), imageTag="a-first")
    detail = ecr.describe_images(repositoryName=repository)["imageDetails"][0]
    assert detail["registryId"] == ecr.describe_registry()["registryId"]
    assert detail["repositoryName"] == repository
    assert detail["imageDigest"] == digest
    assert detail["imageTags"] == ["z-last", "a-first"]  # in the order they were put on it
    # OPEN question 1, resolved: config + layers (the manifest's own bytes are not counted).
    assert detail["imageSizeInBytes"] == len(config) + len(layer)
    assert detail["imagePushedAt"] >= before
    assert detail["imageManifestMediaType"] == OCI_MANIFEST
    assert detail["artifactMediaType"] == "application/vnd.oci.image.config.v1+json"
    assert detail["imageStatus"] == "ACTIVE"
    assert "lastRecordedPullTime" not in detail


def test_describe_images_of_an_index_and_filters(ecr: Any) -> None:
    repository = new_repository(ecr, "images/describe-index")
    small, small_manifest = put_image(ecr, repository, config_blob("s"), [b"s" * 10])
    large, large_manifest = put_image(ecr, repository, config_blob("l"), [b"l" * 5000])
    index = image_index([small_manifest, large_manifest])
    ecr.put_image(repositoryName=repository, imageManifest=index.decode(), imageTag="multi")
    details = {
        d["imageDigest"]: d for d in ecr.describe_images(repositoryName=repository)["imageDetails"]
    }
    # An index weighs what its largest image weighs, as ECR documents for manifest lists.
    assert details[digest_of(index)]["imageSizeInBytes"] == details[large]["imageSizeInBytes"]
    assert details[digest_of(index)]["imageManifestMediaType"] == OCI_INDEX
    assert "artifactMediaType" not in details[digest_of(index)]
    assert "imageTags" not in details[small]
    tagged = ecr.describe_images(repositoryName=repository, filter={"tagStatus": "TAGGED"})
    assert [d["imageDigest"] for d in tagged["imageDetails"]] == [digest_of(index)]
    untagged = ecr.describe_images(repositoryName=repository, filter={"tagStatus": "UNTAGGED"})
    assert {d["imageDigest"] for d in untagged["imageDetails"]} == {small, large}
    first = ecr.describe_images(repositoryName=repository, maxResults=2)
    assert len(first["imageDetails"]) == 2
    rest = ecr.describe_images(repositoryName=repository, nextToken=first["nextToken"])
    assert len(rest["imageDetails"]) == 1
    assert "nextToken" not in rest


def test_describe_images_by_id(ecr: Any) -> None:
    repository = new_repository(ecr, "images/describe-ids")
    digest, _ = image(ecr, repository, "ids", tag="v1")
    named = ecr.describe_images(
        repositoryName=repository, imageIds=[{"imageTag": "v1"}, {"imageDigest": digest}]
    )["imageDetails"]
    assert [d["imageDigest"] for d in named] == [digest]  # one image, named twice
    code, message = aws_error(
        ecr.describe_images, repositoryName=repository, imageIds=[{"imageTag": "v9"}]
    )
    assert code == "ImageNotFoundException"
    assert message == (
        "The image with imageId {imageDigest:'null', imageTag:'v9'} does not exist within the "
        f"repository with name '{repository}' in the registry with id "
        f"'{ecr.describe_registry()['registryId']}'"
    )
    code, _ = aws_error(
        ecr.describe_images,
        repositoryName=repository,
        imageIds=[{"imageTag": "v1"}],
        maxResults=5,
    )
    assert code == "InvalidParameterException"
    code, _ = aws_error(ecr.describe_images, repositoryName="images/none")
    assert code == "RepositoryNotFoundException"


# -- ListImageReferrers ------------------------------------------------------------------------


def test_list_image_referrers(ecr: Any) -> None:
    repository = new_repository(ecr, "images/referrers")
    subject, subject_manifest = image(ecr, repository, "subject", tag="v1")
    empty = b"{}"
    upload_blob(ecr, repository, empty)
    referrers = []
    for index, artifact_type in enumerate(
        ["application/vnd.example.sbom", "application/vnd.example.signature"] * 2
    ):
        blob = f"artifact {index}".encode()
        upload_blob(ecr, repository, blob)
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": digest_of(empty),
                "size": 2,
            },
            "layers": [{"mediaType": "text/plain", "digest": digest_of(blob), "size": len(blob)}],
            "subject": {
                "mediaType": OCI_MANIFEST,
                "digest": subject,
                "size": len(subject_manifest),
            },
            "annotations": {"index": str(index)},
        }
        text = json.dumps(document)
        ecr.put_image(repositoryName=repository, imageManifest=text)
        referrers.append((digest_of(text.encode()), artifact_type, len(text), str(index)))
    answer = ecr.list_image_referrers(repositoryName=repository, subjectId={"imageDigest": subject})
    assert [
        (r["digest"], r["artifactType"], r["size"], r["annotations"]["index"])
        for r in answer["referrers"]
    ] == referrers
    assert all(r["mediaType"] == OCI_MANIFEST for r in answer["referrers"])
    assert all(r["artifactStatus"] == "ACTIVE" for r in answer["referrers"])
    sboms = ecr.list_image_referrers(
        repositoryName=repository,
        subjectId={"imageDigest": subject},
        filter={"artifactTypes": ["application/vnd.example.sbom"]},
    )["referrers"]
    assert [r["digest"] for r in sboms] == [referrers[0][0], referrers[2][0]]
    page = ecr.list_image_referrers(
        repositoryName=repository, subjectId={"imageDigest": subject}, maxResults=3
    )
    rest = ecr.list_image_referrers(
        repositoryName=repository, subjectId={"imageDigest": subject}, nextToken=page["nextToken"]
    )
    assert [r["digest"] for r in page["referrers"] + rest["referrers"]] == [r[0] for r in referrers]
    # DescribeImages names the subject of each referrer.
    detail = ecr.describe_images(
        repositoryName=repository, imageIds=[{"imageDigest": referrers[0][0]}]
    )["imageDetails"][0]
    assert detail["subjectManifestDigest"] == subject
    assert detail["artifactMediaType"] == "application/vnd.oci.empty.v1+json"
    none = ecr.list_image_referrers(
        repositoryName=repository, subjectId={"imageDigest": digest_of(b"no such subject")}
    )
    assert none["referrers"] == []


# -- Round trips with /v2/ ---------------------------------------------------------------------


def test_pushed_over_v2_seen_by_the_api(ecr: Any, v2: RegistryClient) -> None:
    repository = new_repository(ecr, "images/from-v2")
    config, layer = config_blob("from-v2"), b"v2 layer" * 100
    digest, manifest = v2.push_image(repository, "v1", config, [layer])
    detail = ecr.describe_images(repositoryName=repository)["imageDetails"][0]
    assert detail["imageDigest"] == digest
    assert detail["imageTags"] == ["v1"]
    assert detail["imageSizeInBytes"] == len(config) + len(layer)
    got = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": "v1"}])
    assert got["images"][0]["imageManifest"] == manifest.decode()
    availability = ecr.batch_check_layer_availability(
        repositoryName=repository, layerDigests=[digest_of(layer)]
    )
    assert availability["layers"][0]["layerSize"] == len(layer)
    # Deleted through the API, gone from /v2/.
    ecr.batch_delete_image(repositoryName=repository, imageIds=[{"imageTag": "v1"}])
    assert v2.manifest(repository, "v1").status_code == 404


def test_put_with_the_api_pulled_over_v2(ecr: Any, v2: RegistryClient) -> None:
    repository = new_repository(ecr, "images/to-v2")
    config, layer = config_blob("to-v2"), bytes(range(256)) * 40
    digest, manifest = put_image(ecr, repository, config, [layer], tag="v1")
    response = v2.manifest(repository, "v1")
    assert response.status_code == 200
    assert response.content == manifest
    assert response.headers["Docker-Content-Digest"] == digest
    assert v2.blob(repository, digest_of(config)) == config
    assert v2.blob(repository, digest_of(layer)) == layer
    assert v2.tags(repository) == ["v1"]


def test_the_download_url_matches_the_v2_blob(ecr: Any, v2: RegistryClient) -> None:
    repository = new_repository(ecr, "images/url-vs-v2")
    layer = b"same bytes both ways"
    put_image(ecr, repository, config_blob("url"), [layer], tag="v1")
    url = ecr.get_download_url_for_layer(repositoryName=repository, layerDigest=digest_of(layer))[
        "downloadUrl"
    ]
    assert requests.get(url, timeout=30).content == v2.blob(repository, digest_of(layer))


# -- AWS CLI -----------------------------------------------------------------------------------


def test_aws_cli_describe_and_batch_delete(ecr: Any, iam_server: IamServer, tmp_path: Path) -> None:
    repository = new_repository(ecr, "images/cli")
    digest, _ = image(ecr, repository, "cli", tag="v1")
    described = aws_json(
        iam_server.url,
        iam_server.admin,
        tmp_path,
        "ecr",
        "describe-images",
        "--repository-name",
        repository,
    )
    assert [d["imageDigest"] for d in described["imageDetails"]] == [digest]
    assert described["imageDetails"][0]["imageTags"] == ["v1"]
    deleted = aws_json(
        iam_server.url,
        iam_server.admin,
        tmp_path,
        "ecr",
        "batch-delete-image",
        "--repository-name",
        repository,
        "--image-ids",
        "imageTag=v1",
        "imageTag=v9",
    )
    assert deleted["imageIds"] == [{"imageDigest": digest, "imageTag": "v1"}]
    assert deleted["failures"][0]["failureCode"] == "ImageNotFound"
    listed = aws_json(
        iam_server.url,
        iam_server.admin,
        tmp_path,
        "ecr",
        "list-images",
        "--repository-name",
        repository,
    )
    assert listed["imageIds"] == []
    failed = aws_cli(
        iam_server.url,
        iam_server.admin,
        tmp_path,
        "ecr",
        "describe-images",
        "--repository-name",
        repository,
        "--image-ids",
        "imageTag=v1",
    )
    assert failed.returncode != 0
    assert "ImageNotFoundException" in failed.stderr

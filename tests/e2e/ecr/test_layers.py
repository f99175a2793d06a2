"""Layer operations of the ECR API over boto3, against a real server with IAM on:
BatchCheckLayerAvailability, InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload,
GetDownloadUrlForLayer (and the URL it gives, fetched without credentials)."""

from __future__ import annotations

import os
from typing import Any

import pytest
import requests

from tests.e2e.aws import ecr_client
from tests.e2e.client import digest_of
from tests.e2e.conftest import IamServer
from tests.e2e.ecr.helpers import aws_error, login_password
from tests.e2e.ecr.layer_api import config_blob, put_image, upload_blob

pytestmark = pytest.mark.e2e

UPLOAD_ID = "0b1a9a7e-2c4d-4e5f-8a9b-0c1d2e3f4a5b"


@pytest.fixture(scope="module")
def ecr(iam_server: IamServer) -> Any:
    return ecr_client(iam_server.url, iam_server.admin)


@pytest.fixture(scope="module")
def raw(iam_server: IamServer) -> Any:
    """A client that sends what it is given, so that the server's own checks answer."""
    return ecr_client(iam_server.url, iam_server.admin, parameter_validation=False)


@pytest.fixture(scope="module")
def repository(ecr: Any) -> str:
    ecr.create_repository(repositoryName="layers/main")
    return "layers/main"


# -- Uploads -----------------------------------------------------------------------------------


def test_upload_in_parts_then_available(ecr: Any, repository: str) -> None:
    data = os.urandom(3000)
    initiated = ecr.initiate_layer_upload(repositoryName=repository)
    assert initiated["partSize"] == 10 * 1024 * 1024
    upload_id = initiated["uploadId"]
    for first in (0, 1000, 2000):
        answer = ecr.upload_layer_part(
            repositoryName=repository,
            uploadId=upload_id,
            partFirstByte=first,
            partLastByte=first + 999,
            layerPartBlob=data[first : first + 1000],
        )
        assert answer["uploadId"] == upload_id
        assert answer["repositoryName"] == repository
        assert answer["lastByteReceived"] == first + 999
    done = ecr.complete_layer_upload(
        repositoryName=repository, uploadId=upload_id, layerDigests=[digest_of(data)]
    )
    assert done["layerDigest"] == digest_of(data)
    assert done["uploadId"] == upload_id
    layers = ecr.batch_check_layer_availability(
        repositoryName=repository, layerDigests=[digest_of(data)]
    )["layers"]
    assert layers == [
        {
            "layerDigest": digest_of(data),
            "layerAvailability": "AVAILABLE",
            "layerSize": 3000,
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
        }
    ]


def test_a_part_that_does_not_continue_the_upload(ecr: Any, repository: str) -> None:
    upload_id = ecr.initiate_layer_upload(repositoryName=repository)["uploadId"]
    ecr.upload_layer_part(
        repositoryName=repository,
        uploadId=upload_id,
        partFirstByte=0,
        partLastByte=9,
        layerPartBlob=b"0123456789",
    )
    with pytest.raises(ecr.exceptions.InvalidLayerPartException) as raised:
        ecr.upload_layer_part(
            repositoryName=repository,
            uploadId=upload_id,
            partFirstByte=5,  # a gap or an overlap: both refused
            partLastByte=14,
            layerPartBlob=b"abcdefghij",
        )
    error = raised.value.response
    assert error["lastValidByteReceived"] == 9
    assert error["uploadId"] == upload_id
    assert error["repositoryName"] == repository
    # The upload is intact: the right part still continues it.
    answer = ecr.upload_layer_part(
        repositoryName=repository,
        uploadId=upload_id,
        partFirstByte=10,
        partLastByte=19,
        layerPartBlob=b"abcdefghij",
    )
    assert answer["lastByteReceived"] == 19


def test_a_part_whose_range_does_not_match_its_bytes(ecr: Any, repository: str) -> None:
    upload_id = ecr.initiate_layer_upload(repositoryName=repository)["uploadId"]
    code, _ = aws_error(
        ecr.upload_layer_part,
        repositoryName=repository,
        uploadId=upload_id,
        partFirstByte=0,
        partLastByte=99,
        layerPartBlob=b"ten bytes!",
    )
    assert code == "InvalidLayerPartException"


def test_unknown_upload(ecr: Any, repository: str) -> None:
    code, _ = aws_error(
        ecr.upload_layer_part,
        repositoryName=repository,
        uploadId=UPLOAD_ID,
        partFirstByte=0,
        partLastByte=0,
        layerPartBlob=b"x",
    )
    assert code == "UploadNotFoundException"
    code, _ = aws_error(
        ecr.complete_layer_upload,
        repositoryName=repository,
        uploadId=UPLOAD_ID,
        layerDigests=[digest_of(b"x")],
    )
    assert code == "UploadNotFoundException"


def test_an_upload_belongs_to_its_repository(ecr: Any, repository: str) -> None:
    ecr.create_repository(repositoryName="layers/other")
    upload_id = ecr.initiate_layer_upload(repositoryName="layers/other")["uploadId"]
    code, _ = aws_error(
        ecr.upload_layer_part,
        repositoryName=repository,
        uploadId=upload_id,
        partFirstByte=0,
        partLastByte=0,
        layerPartBlob=b"x",
    )
    assert code == "UploadNotFoundException"


def test_complete_checks_in_ecrs_order(ecr: Any, raw: Any, repository: str) -> None:
    """UploadNotFound (above), EmptyUpload, LayerAlreadyExists (by the digest claimed), then
    InvalidLayer for content that does not hash to the digest."""
    upload_id = ecr.initiate_layer_upload(repositoryName=repository)["uploadId"]
    code, _ = aws_error(
        ecr.complete_layer_upload,
        repositoryName=repository,
        uploadId=upload_id,
        layerDigests=[digest_of(b"")],
    )
    assert code == "EmptyUploadException"

    existing = upload_blob(ecr, repository, b"already here")
    upload_id = ecr.initiate_layer_upload(repositoryName=repository)["uploadId"]
    ecr.upload_layer_part(
        repositoryName=repository,
        uploadId=upload_id,
        partFirstByte=0,
        partLastByte=11,
        layerPartBlob=b"already here",
    )
    code, _ = aws_error(
        ecr.complete_layer_upload,
        repositoryName=repository,
        uploadId=upload_id,
        layerDigests=[existing],
    )
    assert code == "LayerAlreadyExistsException"
    # That upload is over.
    code, _ = aws_error(
        ecr.complete_layer_upload,
        repositoryName=repository,
        uploadId=upload_id,
        layerDigests=[existing],
    )
    assert code == "UploadNotFoundException"

    upload_id = ecr.initiate_layer_upload(repositoryName=repository)["uploadId"]
    ecr.upload_layer_part(
        repositoryName=repository,
        uploadId=upload_id,
        partFirstByte=0,
        partLastByte=4,
        layerPartBlob=b"hello",
    )
    code, _ = aws_error(
        ecr.complete_layer_upload,
        repositoryName=repository,
        uploadId=upload_id,
        layerDigests=[digest_of(b"jello")],
    )
    assert code == "InvalidLayerException"
    # One upload is one blob: two digests are refused.
    code, _ = aws_error(
        raw.complete_layer_upload,
        repositoryName=repository,
        uploadId=upload_id,
        layerDigests=[digest_of(b"hello"), digest_of(b"jello")],
    )
    assert code == "InvalidParameterException"
    # The session survived the mismatch; the right digest completes it.
    done = ecr.complete_layer_upload(
        repositoryName=repository, uploadId=upload_id, layerDigests=[digest_of(b"hello")]
    )
    assert done["layerDigest"] == digest_of(b"hello")


def test_uploads_need_an_existing_repository(ecr: Any) -> None:
    code, message = aws_error(ecr.initiate_layer_upload, repositoryName="layers/missing")
    assert code == "RepositoryNotFoundException"
    assert "'layers/missing' does not exist" in message


# -- BatchCheckLayerAvailability ---------------------------------------------------------------


def test_availability_with_failures(ecr: Any, raw: Any, repository: str) -> None:
    present = upload_blob(ecr, repository, b"present layer")
    absent = digest_of(b"absent layer")
    answer = raw.batch_check_layer_availability(
        repositoryName=repository, layerDigests=[present, absent, "md5:abcd", ""]
    )
    assert answer["layers"] == [
        {
            "layerDigest": present,
            "layerAvailability": "AVAILABLE",
            "layerSize": 13,
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
        },
        {"layerDigest": absent, "layerAvailability": "UNAVAILABLE"},
    ]
    failures = {f["layerDigest"]: f["failureCode"] for f in answer["failures"]}
    assert failures == {"md5:abcd": "InvalidLayerDigest", "": "MissingLayerDigest"}


def test_availability_of_a_missing_repository(ecr: Any) -> None:
    code, _ = aws_error(
        ecr.batch_check_layer_availability,
        repositoryName="layers/none",
        layerDigests=[digest_of(b"x")],
    )
    assert code == "RepositoryNotFoundException"


# -- GetDownloadUrlForLayer --------------------------------------------------------------------


def test_download_url_downloads_without_credentials(ecr: Any, repository: str) -> None:
    layer = os.urandom(5000)
    put_image(ecr, repository, config_blob("download"), [layer], tag="download")
    answer = ecr.get_download_url_for_layer(repositoryName=repository, layerDigest=digest_of(layer))
    assert answer["layerDigest"] == digest_of(layer)
    url = answer["downloadUrl"]
    assert "/_moorage/layers/" in url
    response = requests.get(url, timeout=30)  # no Authorization at all
    assert response.status_code == 200
    assert response.content == layer
    ranged = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=30)
    assert ranged.status_code == 206
    assert ranged.content == layer[100:200]


def test_a_tampered_download_url_is_refused(ecr: Any, repository: str) -> None:
    layer = b"tamper-proof layer"
    put_image(ecr, repository, config_blob("tamper"), [layer], tag="tamper")
    url = ecr.get_download_url_for_layer(repositoryName=repository, layerDigest=digest_of(layer))[
        "downloadUrl"
    ]
    flipped = url[:-3] + ("A" if url[-3] != "A" else "B") + url[-2:]
    assert requests.get(flipped, timeout=30).status_code == 403
    assert requests.get(url + "x", timeout=30).status_code == 403


def test_download_url_stops_working_when_the_blob_leaves(ecr: Any) -> None:
    ecr.create_repository(repositoryName="layers/short-lived")
    layer = b"short-lived layer"
    put_image(ecr, "layers/short-lived", config_blob("short"), [layer], tag="v1")
    url = ecr.get_download_url_for_layer(
        repositoryName="layers/short-lived", layerDigest=digest_of(layer)
    )["downloadUrl"]
    ecr.delete_repository(repositoryName="layers/short-lived", force=True)
    assert requests.get(url, timeout=30).status_code == 404


def test_download_url_errors(ecr: Any, repository: str) -> None:
    code, _ = aws_error(
        ecr.get_download_url_for_layer,
        repositoryName=repository,
        layerDigest=digest_of(b"never uploaded"),
    )
    assert code == "LayersNotFoundException"
    # Uploaded, but no image references it: ECR refuses, as such blobs may be collected.
    orphan = upload_blob(ecr, repository, b"orphan layer")
    code, _ = aws_error(
        ecr.get_download_url_for_layer, repositoryName=repository, layerDigest=orphan
    )
    assert code == "LayerInaccessibleException"
    code, _ = aws_error(
        ecr.get_download_url_for_layer,
        repositoryName="layers/none",
        layerDigest=orphan,
    )
    assert code == "RepositoryNotFoundException"


# -- /v2/ and the API share uploads ------------------------------------------------------------


def test_layers_pushed_over_v2_are_available_to_the_api(
    ecr: Any, repository: str, iam_server: IamServer
) -> None:
    data = b"pushed over /v2/"
    digest = digest_of(data)
    response = requests.post(
        f"{iam_server.url}/v2/{repository}/blobs/uploads/",
        params={"digest": digest},
        data=data,
        auth=("AWS", login_password(ecr)),
        timeout=30,
    )
    assert response.status_code == 201, response.text
    layers = ecr.batch_check_layer_availability(repositoryName=repository, layerDigests=[digest])
    assert layers["layers"][0]["layerAvailability"] == "AVAILABLE"

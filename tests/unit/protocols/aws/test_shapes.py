"""Input validation and output writing against botocore's real ``ecr`` model (and one small
model of our own for what ECR's inputs never use: ValidationException-only operations,
timestamps, maps, doubles, blob output)."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import pytest
from botocore.model import ServiceModel

from moorage.domain.digests import Digest
from moorage.protocols.aws import shapes
from moorage.protocols.aws.errors import ApiError
from moorage.protocols.aws.shapes import OperationModel

REPOSITORY_NAME_REGEX = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*"


def ecr(name: str) -> OperationModel:
    model = shapes.operation_model(name)
    assert model is not None
    return model


def rejected(operation: str, body: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        shapes.deserialize_input(ecr(operation), body)
    return caught.value


# --- the model -------------------------------------------------------------------------------


def test_the_model_is_botocores_ecr_loaded_once() -> None:
    assert shapes.service_model() is shapes.service_model()
    assert shapes.target_prefix() == "AmazonEC2ContainerRegistry_V20150921"
    assert "CreateRepository" in shapes.operation_names()
    assert shapes.operation_model("CreateRepositories") is None
    assert ecr("PutImage") is ecr("PutImage")


def test_every_pattern_in_the_model_compiles() -> None:
    model = shapes.service_model()
    patterns = set()
    for operation in model.operation_names:
        stack: list[Any] = [model.operation_model(operation).input_shape]
        seen: set[str] = set()
        while stack:
            shape = stack.pop()
            if shape is None or shape.name in seen:
                continue
            seen.add(shape.name)
            if "pattern" in shape.metadata:
                patterns.add(shape.metadata["pattern"])
            stack.extend(getattr(shape, "members", {}).values())
            stack.extend(getattr(shape, attr, None) for attr in ("member", "key", "value"))
    assert REPOSITORY_NAME_REGEX in patterns
    for regex in patterns:
        re.compile(regex, re.ASCII)


# --- input: happy paths ----------------------------------------------------------------------


def test_create_repository_comes_out_in_snake_case_nested_too() -> None:
    params = shapes.deserialize_input(
        ecr("CreateRepository"),
        {
            "registryId": "123456789012",
            "repositoryName": "team-a/web-app",
            "tags": [{"Key": "team", "Value": "a"}],
            "imageTagMutability": "IMMUTABLE",
            "imageScanningConfiguration": {"scanOnPush": True},
            "encryptionConfiguration": {"encryptionType": "AES256"},
            "somethingAwsAddsNextYear": {"ignored": True},
        },
    )
    assert params == {
        "registry_id": "123456789012",
        "repository_name": "team-a/web-app",
        "tags": [{"key": "team", "value": "a"}],
        "image_tag_mutability": "IMMUTABLE",
        "image_scanning_configuration": {"scan_on_push": True},
        "encryption_configuration": {"encryption_type": "AES256"},
    }


def test_null_is_absent_and_absent_stays_absent() -> None:
    params = shapes.deserialize_input(
        ecr("DescribeImages"), {"repositoryName": "web", "nextToken": None}
    )
    assert params == {"repository_name": "web"}


def test_describe_images_with_ids_filter_and_page_size() -> None:
    params = shapes.deserialize_input(
        ecr("DescribeImages"),
        {
            "repositoryName": "web",
            "imageIds": [{"imageTag": "latest"}, {"imageDigest": "sha256:" + "0" * 64}],
            "maxResults": 1000,
            "filter": {"tagStatus": "TAGGED"},
        },
    )
    assert params["image_ids"] == [{"image_tag": "latest"}, {"image_digest": "sha256:" + "0" * 64}]
    assert params["max_results"] == 1000
    assert params["filter"] == {"tag_status": "TAGGED"}


def test_upload_layer_part_decodes_the_blob() -> None:
    payload = bytes(range(256)) * 4
    params = shapes.deserialize_input(
        ecr("UploadLayerPart"),
        {
            "repositoryName": "web",
            "uploadId": "0f0e0d0c-0b0a-0908-0706-050403020100",
            "partFirstByte": 0,
            "partLastByte": 2**40,
            "layerPartBlob": base64.b64encode(payload).decode(),
        },
    )
    assert params["layer_part_blob"] == payload
    assert params["part_last_byte"] == 2**40


def test_put_image_takes_a_manifest_string() -> None:
    manifest = '{"schemaVersion":2}'
    params = shapes.deserialize_input(
        ecr("PutImage"), {"repositoryName": "web", "imageManifest": manifest, "imageTag": "v1"}
    )
    assert params == {"repository_name": "web", "image_manifest": manifest, "image_tag": "v1"}


def test_an_operation_without_input_members_takes_anything() -> None:
    assert shapes.deserialize_input(ecr("DescribeRegistry"), {"whatever": 1}) == {}


# --- input: InvalidParameterException, ECR's form ---------------------------------------------


def test_pattern_failure_quotes_the_regex_as_ecr_does() -> None:
    error = rejected("CreateRepository", {"repositoryName": "Web_App"})
    assert error.type_name == "InvalidParameterException"
    assert error.status == 400
    assert error.message == (
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: "
        f"'must satisfy regular expression '{REPOSITORY_NAME_REGEX}''"
    )


def test_the_pattern_must_match_the_whole_value() -> None:
    error = rejected("CreateRepository", {"repositoryName": "web app"})
    assert "must satisfy regular expression" in error.message
    error = rejected("CreateRepository", {"repositoryName": "web", "registryId": "1234567890123"})
    assert error.message.startswith("Invalid parameter at 'registryId'")


def test_missing_required_member() -> None:
    error = rejected("CreateRepository", {})
    assert error.message == (
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: "
        "'Member must not be null'"
    )


def test_string_length_bounds() -> None:
    error = rejected("CreateRepository", {"repositoryName": "a" * 257})
    assert error.message == (
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: "
        "'Member must have length less than or equal to 256'"
    )
    error = rejected("CreateRepository", {"repositoryName": "a"})
    assert error.message.endswith("'Member must have length greater than or equal to 2'")


def test_numeric_bounds() -> None:
    error = rejected("DescribeImages", {"repositoryName": "web", "maxResults": 1001})
    assert error.message == (
        "Invalid parameter at 'maxResults' failed to satisfy constraint: "
        "'Member must have value less than or equal to 1000'"
    )
    error = rejected("DescribeImages", {"repositoryName": "web", "maxResults": 0})
    assert error.message.endswith("'Member must have value greater than or equal to 1'")
    error = rejected(
        "UploadLayerPart",
        {
            "repositoryName": "web",
            "uploadId": "0f0e0d0c-0b0a-0908-0706-050403020100",
            "partFirstByte": -1,
            "partLastByte": 0,
            "layerPartBlob": "",
        },
    )
    assert error.message.startswith("Invalid parameter at 'partFirstByte'")


def test_enum_lists_the_allowed_values_in_model_order() -> None:
    error = rejected("CreateRepository", {"repositoryName": "web", "imageTagMutability": "FROZEN"})
    assert error.message == (
        "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: "
        "'Member must satisfy enum value set: "
        "[MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]'"
    )


def test_list_length_bounds() -> None:
    error = rejected("BatchDeleteImage", {"repositoryName": "web", "imageIds": []})
    assert error.message.endswith(
        "at 'imageIds' failed to satisfy constraint: "
        "'Member must have length greater than or equal to 1'"
    )
    ids = [{"imageTag": f"t{i}"} for i in range(101)]
    error = rejected("BatchDeleteImage", {"repositoryName": "web", "imageIds": ids})
    assert error.message.endswith("'Member must have length less than or equal to 100'")


def test_nested_paths_are_one_based_with_member() -> None:
    error = rejected(
        "BatchDeleteImage",
        {"repositoryName": "web", "imageIds": [{"imageTag": "ok"}, {"imageTag": ""}]},
    )
    assert error.message == (
        "Invalid parameter at 'imageIds.2.member.imageTag' failed to satisfy constraint: "
        "'Member must have length greater than or equal to 1'"
    )
    error = rejected("CreateRepository", {"repositoryName": "web", "tags": [{"Key": "k"}]})
    assert error.message.startswith("Invalid parameter at 'tags.1.member.Value'")
    error = rejected(
        "CreateRepository",
        {"repositoryName": "web", "encryptionConfiguration": {"encryptionType": "ROT13"}},
    )
    assert error.message.startswith("Invalid parameter at 'encryptionConfiguration.encryptionType'")


def test_a_null_list_item_is_a_missing_member() -> None:
    error = rejected("BatchDeleteImage", {"repositoryName": "web", "imageIds": [None]})
    assert error.message == (
        "Invalid parameter at 'imageIds.1.member' failed to satisfy constraint: "
        "'Member must not be null'"
    )


def test_the_first_failure_in_model_order_is_the_one_named() -> None:
    # registryId comes before repositoryName in CreateRepositoryRequest.
    error = rejected("CreateRepository", {"repositoryName": "A", "registryId": "x"})
    assert error.message.startswith("Invalid parameter at 'registryId'")


def test_blob_length_counts_decoded_bytes() -> None:
    too_big = base64.b64encode(b"\0" * (20 * 1024 * 1024 + 1)).decode()
    error = rejected(
        "UploadLayerPart",
        {
            "repositoryName": "web",
            "uploadId": "0f0e0d0c-0b0a-0908-0706-050403020100",
            "partFirstByte": 0,
            "partLastByte": 0,
            "layerPartBlob": too_big,
        },
    )
    assert error.message == (
        "Invalid parameter at 'layerPartBlob' failed to satisfy constraint: "
        "'Member must have length less than or equal to 20971520'"
    )


# --- input: SerializationException (wrong JSON types) ---------------------------------------


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("CreateRepository", {"repositoryName": 42}),
        ("CreateRepository", {"repositoryName": ["web"]}),
        ("CreateRepository", {"repositoryName": "web", "tags": {"Key": "k", "Value": "v"}}),
        ("CreateRepository", {"repositoryName": "web", "imageScanningConfiguration": True}),
        (
            "CreateRepository",
            {"repositoryName": "w", "imageScanningConfiguration": {"scanOnPush": 1}},
        ),
        ("DescribeImages", {"repositoryName": "web", "maxResults": "10"}),
        ("DescribeImages", {"repositoryName": "web", "maxResults": True}),
        ("DescribeImages", {"repositoryName": "web", "maxResults": 10.0}),
        ("DescribeImages", {"repositoryName": "web", "maxResults": 2**31}),
        ("DescribeImages", {"repositoryName": "web", "imageIds": [["latest"]]}),
        ("DeleteRepository", {"repositoryName": "web", "force": "true"}),
    ],
)
def test_wrong_json_types(operation: str, body: dict[str, Any]) -> None:
    error = rejected(operation, body)
    assert error.type_name == "SerializationException"
    assert error.status == 400


def test_type_errors_name_the_member() -> None:
    error = rejected("DescribeImages", {"repositoryName": "web", "imageIds": [{"imageTag": 5}]})
    assert error.message == "Expected a string at 'imageIds.1.member.imageTag', got a number."


@pytest.mark.parametrize("blob", ["not base64!", "QUJ", 12])
def test_bad_blobs(blob: object) -> None:
    error = rejected(
        "UploadLayerPart",
        {
            "repositoryName": "web",
            "uploadId": "0f0e0d0c-0b0a-0908-0706-050403020100",
            "partFirstByte": 0,
            "partLastByte": 0,
            "layerPartBlob": blob,
        },
    )
    assert error.type_name == "SerializationException"


def test_the_top_level_must_be_an_object() -> None:
    error = rejected("CreateRepository", ["web"])  # type: ignore[arg-type]
    assert error.type_name == "SerializationException"


# --- input: ValidationException form, and types ECR inputs never use ----------------------

SMALL_MODEL = {
    "metadata": {
        "apiVersion": "2026-01-01",
        "protocol": "json",
        "jsonVersion": "1.1",
        "targetPrefix": "Small",
        "serviceId": "Small",
        "signatureVersion": "v4",
        "endpointPrefix": "small",
    },
    "operations": {
        "Check": {
            "name": "Check",
            "http": {"method": "POST", "requestUri": "/"},
            "input": {"shape": "CheckRequest"},
            "output": {"shape": "CheckResponse"},
            "errors": [{"shape": "ValidationException"}],
        },
        "Ping": {"name": "Ping", "http": {"method": "POST", "requestUri": "/"}},
    },
    "shapes": {
        "CheckRequest": {
            "type": "structure",
            "required": ["name", "count"],
            "members": {
                "name": {"shape": "Name"},
                "count": {"shape": "Count"},
                "since": {"shape": "When"},
                "ratio": {"shape": "Ratio"},
                "labels": {"shape": "Labels"},
                "items": {"shape": "Items"},
            },
        },
        "CheckResponse": {
            "type": "structure",
            "members": {
                "since": {"shape": "When"},
                "ratio": {"shape": "Ratio"},
                "payload": {"shape": "Payload"},
                "labels": {"shape": "Labels"},
            },
        },
        "Name": {"type": "string", "min": 2, "pattern": "[a-z]+"},
        "Count": {"type": "integer", "max": 10},
        "When": {"type": "timestamp"},
        "Ratio": {"type": "double", "min": 0, "max": 1},
        "Labels": {"type": "map", "key": {"shape": "Label"}, "value": {"shape": "Name"}, "max": 2},
        "Label": {"type": "string", "max": 3},
        "Items": {"type": "list", "member": {"shape": "Name"}},
        "Payload": {"type": "blob"},
        "ValidationException": {
            "type": "structure",
            "members": {"message": {"shape": "Label"}},
            "exception": True,
        },
    },
}


@pytest.fixture(scope="module")
def check() -> OperationModel:
    operation: OperationModel = ServiceModel(SMALL_MODEL, "small").operation_model("Check")
    return operation


def test_validation_exception_counts_and_lists_every_failure(check: OperationModel) -> None:
    with pytest.raises(ApiError) as caught:
        shapes.deserialize_input(check, {"name": "A", "items": ["ok", "NO"]})
    assert caught.value.type_name == "ValidationException"
    assert caught.value.message == (
        "4 validation errors detected: "
        "Value 'A' at 'name' failed to satisfy constraint: "
        "Member must have length greater than or equal to 2; "
        "Value 'A' at 'name' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-z]+; "
        "Value null at 'count' failed to satisfy constraint: Member must not be null; "
        "Value 'NO' at 'items.2.member' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-z]+"
    )


def test_validation_exception_for_one_failure(check: OperationModel) -> None:
    with pytest.raises(ApiError) as caught:
        shapes.deserialize_input(check, {"name": "ab", "count": 11})
    assert caught.value.message == (
        "1 validation error detected: Value '11' at 'count' failed to satisfy constraint: "
        "Member must have value less than or equal to 10"
    )


def test_maps_keep_their_keys_and_check_both_sides(check: OperationModel) -> None:
    params = shapes.deserialize_input(check, {"name": "ab", "count": 1, "labels": {"Aa": "xy"}})
    assert params["labels"] == {"Aa": "xy"}
    with pytest.raises(ApiError) as caught:
        shapes.deserialize_input(check, {"name": "ab", "count": 1, "labels": {"long": "x"}})
    assert "at 'labels.long' failed to satisfy constraint: Member must have length less" in (
        caught.value.message
    )
    assert "Value 'x' at 'labels.long'" in caught.value.message


def test_timestamps_and_doubles(check: OperationModel) -> None:
    params = shapes.deserialize_input(
        check, {"name": "ab", "count": 1, "since": 1767225600.5, "ratio": 1}
    )
    assert params["since"] == datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    assert params["ratio"] == 1.0
    for bad in ({"since": "2026-01-01"}, {"since": 1e300}, {"ratio": "0.5"}):
        with pytest.raises(ApiError) as caught:
            shapes.deserialize_input(check, {"name": "ab", "count": 1, **bad})
        assert caught.value.type_name == "SerializationException"
    with pytest.raises(ApiError) as caught:
        shapes.deserialize_input(check, {"name": "ab", "count": 1, "ratio": 1.5})
    assert "Member must have value less than or equal to 1" in caught.value.message


def test_long_values_are_cut_in_messages(check: OperationModel) -> None:
    with pytest.raises(ApiError) as caught:
        shapes.deserialize_input(check, {"name": "A" * 1000, "count": 1})
    assert len(caught.value.message) < 700


# --- output ------------------------------------------------------------------------------------


def test_describe_images_output() -> None:
    pushed = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
    body = shapes.serialize_output(
        ecr("DescribeImages"),
        {
            "image_details": [
                {
                    "repository_name": "web",
                    "image_digest": Digest.parse("sha256:" + "ab" * 32),
                    "image_tags": ["latest"],
                    "image_size_in_bytes": 5 * 2**30,
                    "image_pushed_at": pushed,
                    "image_scan_findings_summary": {"finding_severity_counts": {"CRITICAL": 1}},
                    "last_recorded_pull_time": None,
                }
            ],
            "next_token": None,
        },
    )
    assert body == {
        "imageDetails": [
            {
                "repositoryName": "web",
                "imageDigest": "sha256:" + "ab" * 32,
                "imageTags": ["latest"],
                "imageSizeInBytes": 5 * 2**30,
                "imagePushedAt": pushed.timestamp(),
                "imageScanFindingsSummary": {"findingSeverityCounts": {"CRITICAL": 1}},
            }
        ]
    }
    assert isinstance(body["imageDetails"][0]["imagePushedAt"], float)


class Mutability(StrEnum):
    IMMUTABLE = "IMMUTABLE"


def test_enums_and_other_time_zones_are_written_plainly() -> None:
    created = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    body = shapes.serialize_output(
        ecr("CreateRepository"),
        {"repository": {"image_tag_mutability": Mutability.IMMUTABLE, "created_at": created}},
    )
    assert body == {
        "repository": {"imageTagMutability": "IMMUTABLE", "createdAt": created.timestamp()}
    }
    assert type(body["repository"]["imageTagMutability"]) is str


def test_empty_output_and_output_free_operations() -> None:
    assert shapes.serialize_output(ecr("DescribeImages"), {}) == {}
    assert shapes.serialize_output(ecr("TagResource"), {}) == {}


def test_an_operation_without_input_or_output_shapes() -> None:
    ping: OperationModel = ServiceModel(SMALL_MODEL, "small").operation_model("Ping")
    assert shapes.deserialize_input(ping, {"anything": 1}) == {}
    assert shapes.serialize_output(ping, {}) == {}
    with pytest.raises(ValueError, match="no output"):
        shapes.serialize_output(ping, {"anything": 1})


def test_blob_output_is_base64(check: OperationModel) -> None:
    assert shapes.serialize_output(check, {"payload": b"\x00\xff"}) == {"payload": "AP8="}


@pytest.mark.parametrize(
    "result",
    [
        {"image_detail": []},
        {"imageDetails": []},
        {"image_details": [{"repository_name": "web", "tags": []}]},
    ],
)
def test_unknown_output_keys_are_bugs(result: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="has no member"):
        shapes.serialize_output(ecr("DescribeImages"), result)


@pytest.mark.parametrize(
    "detail",
    [
        {"image_pushed_at": datetime(2026, 1, 1)},  # naive: which zone?
        {"image_pushed_at": 1767225600},
        {"image_size_in_bytes": "5"},
        {"image_size_in_bytes": True},
        {"image_tags": "latest"},
        {"repository_name": 5},
        {"image_scan_findings_summary": []},
    ],
)
def test_wrong_output_types_are_bugs(detail: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        shapes.serialize_output(ecr("DescribeImages"), {"image_details": [detail]})


def test_output_of_an_operation_without_output_members_must_be_empty() -> None:
    with pytest.raises(ValueError, match="has no member 'tags'"):
        shapes.serialize_output(ecr("TagResource"), {"tags": []})


# --- error bodies ----------------------------------------------------------------------------


def test_error_body_writes_extras_in_the_models_names() -> None:
    body = shapes.error_body(
        "InvalidLayerPartException",
        "bad part",
        {
            "registry_id": "123456789012",
            "repository_name": "web",
            "upload_id": "u",
            "last_valid_byte_received": 41,
        },
    )
    assert body == {
        "__type": "InvalidLayerPartException",
        "message": "bad part",
        "registryId": "123456789012",
        "repositoryName": "web",
        "uploadId": "u",
        "lastValidByteReceived": 41,
    }
    assert shapes.error_body("KmsException", "no", {"kms_error": "Disabled"})["kmsError"] == (
        "Disabled"
    )


def test_error_body_refuses_extras_the_model_does_not_have() -> None:
    assert shapes.error_body("AccessDeniedException", "no", {}) == {
        "__type": "AccessDeniedException",
        "message": "no",
    }
    with pytest.raises(ValueError, match="not a modelled error"):
        shapes.error_body("AccessDeniedException", "no", {"reason": "x"})
    with pytest.raises(ValueError, match="has no member"):
        shapes.error_body("InvalidLayerPartException", "no", {"upload": "x"})

"""ApiError, the front-door errors, and the table from domain exceptions to AWS names."""

from __future__ import annotations

import pytest

from moorage.domain import errors as domain
from moorage.iam.sigv4 import SignatureError
from moorage.protocols.aws import errors
from moorage.protocols.aws.ecr.errors import DOMAIN_ERRORS
from moorage.protocols.aws.errors import ApiError, api_error_for


def test_api_error_defaults_to_400_and_server_exception_is_500() -> None:
    assert ApiError("RepositoryNotFoundException", "gone").status == 400
    assert ApiError("ServerException", "oops").status == 500
    assert ApiError("RequestEntityTooLargeException", "big").status == 413
    assert ApiError("ThrottlingException", "slow down", status=429).status == 429


def test_api_error_keeps_extras_in_snake_case_read_only() -> None:
    error = ApiError("InvalidLayerPartException", "bad", upload_id="u", last_valid_byte_received=9)
    assert dict(error.extras) == {"upload_id": "u", "last_valid_byte_received": 9}
    with pytest.raises(TypeError):
        error.extras["upload_id"] = "v"  # type: ignore[index]
    assert str(error) == "InvalidLayerPartException: bad"


def test_front_door_errors_use_awss_codes_and_texts() -> None:
    assert (errors.missing_authentication_token().type_name) == (
        "MissingAuthenticationTokenException"
    )
    unknown = errors.unrecognized_client()
    assert unknown.type_name == "UnrecognizedClientException"
    assert unknown.message == "The security token included in the request is invalid."
    assert errors.expired_token().type_name == "ExpiredTokenException"
    signature = errors.from_signature_error(
        SignatureError("InvalidSignatureException", "Signature expired: ...")
    )
    assert (signature.type_name, signature.message, signature.status) == (
        "InvalidSignatureException",
        "Signature expired: ...",
        400,
    )


def test_server_error_names_the_request_id_only() -> None:
    error = errors.server_error("req-1")
    assert (error.type_name, error.status) == ("ServerException", 500)
    assert "req-1" in error.message


@pytest.mark.parametrize(
    ("exception", "name"),
    [
        (domain.RepositoryNotFound("x"), "RepositoryNotFoundException"),
        (domain.RepositoryAlreadyExists("x"), "RepositoryAlreadyExistsException"),
        (domain.RepositoryNotEmpty("x"), "RepositoryNotEmptyException"),
        (domain.AccessDenied("x"), "AccessDeniedException"),
        (domain.Unauthenticated("x"), "UnrecognizedClientException"),
        (domain.TooManyRequests("x"), "ThrottlingException"),
        (domain.InvalidName("x"), "InvalidParameterException"),
        (domain.InvalidTag("x"), "InvalidParameterException"),
        (domain.InvalidDigest("x"), "InvalidParameterException"),
        (domain.ManifestInvalid("x"), "InvalidParameterException"),
        (domain.ManifestTooLarge("x"), "InvalidParameterException"),
        (domain.ManifestUnknown("x"), "ImageNotFoundException"),
        (domain.ManifestBlobUnknown("x"), "LayersNotFoundException"),
        (domain.BlobUnknown("x"), "LayersNotFoundException"),
        (domain.UploadUnknown("x"), "UploadNotFoundException"),
        (domain.UploadInvalid("x"), "InvalidLayerPartException"),
        (domain.DigestMismatch("x"), "InvalidLayerException"),
        (domain.SizeMismatch("x"), "InvalidLayerException"),
        (domain.Unsupported("x"), "InvalidParameterException"),
    ],
)
def test_domain_exceptions_map_to_aws_names(exception: domain.RegistryError, name: str) -> None:
    error = api_error_for(exception, DOMAIN_ERRORS)
    assert error is not None
    assert (error.type_name, error.message, error.status) == (name, "x", 400)


def test_a_range_error_says_the_last_valid_byte() -> None:
    error = api_error_for(domain.RangeInvalid("wrong start", size=42), DOMAIN_ERRORS)
    assert error is not None
    assert error.type_name == "InvalidLayerPartException"
    assert dict(error.extras) == {"last_valid_byte_received": 41}
    empty = api_error_for(domain.RangeInvalid("wrong start", size=0), DOMAIN_ERRORS)
    assert empty is not None
    assert dict(empty.extras) == {}


def test_a_subclass_row_comes_before_its_base() -> None:
    seen: list[type[domain.RegistryError]] = []
    for kind, _ in DOMAIN_ERRORS:
        assert not any(issubclass(kind, earlier) for earlier in seen), kind
        seen.append(kind)


def test_unmapped_domain_exceptions_have_no_row() -> None:
    class Novel(domain.RegistryError):
        pass

    assert api_error_for(Novel("new"), DOMAIN_ERRORS) is None

from __future__ import annotations

import pytest

from moorage.domain.addresses import RegistryAddresses

AWS_STYLE = RegistryAddresses("{registry_id}.dkr.ecr.{region}.registry.test", "eu-west-1")


def test_without_a_template_the_registry_is_named_by_the_request_host() -> None:
    addresses = RegistryAddresses(None, "us-east-1")
    assert addresses.repository_uri("123456789012", "team/app", "127.0.0.1:5000") == (
        "127.0.0.1:5000/team/app"
    )
    assert addresses.proxy_endpoint("123456789012", "127.0.0.1:5000", "http") == (
        "http://127.0.0.1:5000"
    )
    assert not addresses.selects_account
    assert addresses.registry_of_host("127.0.0.1:5000") is None


def test_an_aws_style_template_names_each_account() -> None:
    assert AWS_STYLE.repository_uri("123456789012", "app", "ignored:1") == (
        "123456789012.dkr.ecr.eu-west-1.registry.test/app"
    )
    assert AWS_STYLE.selects_account


@pytest.mark.parametrize(
    ("host", "registry_id"),
    [
        ("123456789012.dkr.ecr.eu-west-1.registry.test", "123456789012"),
        ("123456789012.DKR.ecr.eu-west-1.registry.test:5000", "123456789012"),
        # Another region's host names the account too; whether that region is served is
        # the application's to say (region_of_host).
        ("123456789012.dkr.ecr.us-east-1.registry.test", "123456789012"),
        ("12345678901.dkr.ecr.eu-west-1.registry.test", None),
        ("x123456789012.dkr.ecr.eu-west-1.registry.test", None),
        ("registry.test", None),
    ],
)
def test_the_host_header_selects_the_account(host: str, registry_id: str | None) -> None:
    assert AWS_STYLE.registry_of_host(host) == registry_id


@pytest.mark.parametrize(
    ("host", "region"),
    [
        ("123456789012.dkr.ecr.eu-west-1.registry.test", "eu-west-1"),
        ("123456789012.dkr.ecr.AP-SOUTH-1.registry.test:5000", "ap-south-1"),
        ("123456789012.dkr.ecr..registry.test", None),
        ("registry.test", None),
    ],
)
def test_the_host_header_names_the_region(host: str, region: str | None) -> None:
    assert AWS_STYLE.selects_region
    assert AWS_STYLE.region_of_host(host) == region
    assert not RegistryAddresses("{registry_id}.localhost", "us-east-1").selects_region


def test_a_template_with_a_port_requires_that_port() -> None:
    addresses = RegistryAddresses("{registry_id}.localhost:5000", "us-east-1")
    assert addresses.registry_of_host("123456789012.localhost:5000") == "123456789012"
    assert addresses.registry_of_host("123456789012.localhost:6000") is None

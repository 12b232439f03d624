"""The security section's defaults and the tritonserver arguments the serving components render."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from components.config.security import (
    FrontendAuthConfig,
    SecretRefConfig,
    SecurityConfig,
    TritonRestrictedApisConfig,
    frontend_auth_args,
    looks_like_token,
    triton_restricted_api_args,
)


def test_defaults_are_the_secure_ones() -> None:
    security = SecurityConfig()
    assert security.allow_mutable_image_tags is False
    assert security.public_frontends == {}
    assert security.triton_restricted_apis.enabled is True
    assert security.triton_restricted_apis.key.secret_name == "triton-admin-key"


def test_admin_apis_are_restricted_with_the_key_from_the_environment() -> None:
    assert triton_restricted_api_args(TritonRestrictedApisConfig()) == [
        "--http-restricted-api=model-repository,shared-memory,trace,logging,statistics:x-triton-admin-key=$(TRITON_ADMIN_KEY)",
        "--grpc-restricted-protocol=model-repository,shared-memory,trace,logging,statistics:x-triton-admin-key=$(TRITON_ADMIN_KEY)",
    ]
    assert triton_restricted_api_args(TritonRestrictedApisConfig(enabled=False)) == []


def test_a_public_frontend_requires_the_client_key_on_inference() -> None:
    auth = FrontendAuthConfig(key=SecretRefConfig(secret_name="llama-api-key", secret_key="key"))
    assert frontend_auth_args(auth) == [
        "--http-restricted-api=inference,metadata:x-api-key=$(FRONTEND_API_KEY)",
        "--grpc-restricted-protocol=inference,metadata:x-api-key=$(FRONTEND_API_KEY)",
    ]


def test_health_cannot_be_restricted() -> None:
    with pytest.raises(ValidationError, match="'health' cannot be restricted"):
        TritonRestrictedApisConfig(apis=["health", "trace"])


@pytest.mark.parametrize(
    ("value", "token"),
    [
        ("hf_AbCdEfGhIjKlMnOpQrSt", True),
        ("ghp_0123456789abcdefghij", True),
        ("Zm9vYmFyYmF6cXV4cXV1eHF1dXhmb29iYXI", True),
        ("hf-token", False),
        ("triton-admin-key", False),
        ("my-very-long-but-plain-secret-name-for-the-hf-token", False),
    ],
)
def test_tokens_are_told_from_names(value: str, token: bool) -> None:
    assert looks_like_token(value) is token

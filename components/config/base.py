"""Shared base for configuration models: frozen, strict about unknown keys, camelCase in YAML."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ConfigModel(BaseModel):
    """Base for every configuration model.

    Keys are written in camelCase in ``Pulumi.<stack>.yaml`` (``maxBatchSize``) and read as
    snake_case attributes in Python (``max_batch_size``). Unknown keys are errors.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
    )


OFFLINE_SECRET = "[secret]"
"""What a secret config value reads as when the program runs offline (``disaggctl synth``), where
secrets cannot be decrypted. Components that need a secret's content at plan time accept it."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_dns_label(value: str, key: str, max_length: int = 63) -> str:
    """Return ``value`` if it can name Kubernetes objects, else raise naming ``key``."""
    if not _DNS_LABEL.match(value) or len(value) > max_length:
        raise ValueError(
            f"{key} '{value}' must be lowercase letters, digits and '-', start and end with a "
            f"letter or digit, at most {max_length} characters (it names Kubernetes objects): rename it"
        )
    return value

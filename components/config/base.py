"""Shared base for configuration models: frozen, strict about unknown keys, camelCase in YAML."""

from __future__ import annotations

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

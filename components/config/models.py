"""``disagg:models``: the checkpoints model preparation puts in the shared store (llmapi runtime).

Each entry names a catalog model, a pinned Hugging Face commit and a precision; the precision
selects NVIDIA's pre-quantized Model Optimizer checkpoint (engines/catalog.py
``QUANTIZED_CHECKPOINTS``), so nothing is quantized at serving time and the revision pins the
repository that is really downloaded.
"""

from __future__ import annotations

import difflib
import re
from typing import Literal

from pydantic import ValidationInfo, field_validator

from components.config.base import ConfigModel
from engines.catalog import MODELS, QUANTIZED_CHECKPOINTS, ModelInfo, checkpoint_repository
from engines.prepare import model_key

Quantization = Literal["none", "fp8", "nvfp4"]
_REVISION = re.compile(r"^[0-9a-f]{40}$")


class ModelSourceConfig(ConfigModel):
    """One checkpoint: catalog model, precision, pinned revision."""

    model: str
    """Key in engines/catalog.py (e.g. 'llama-3.1-8b-instruct')."""
    quantization: Quantization = "none"
    """'none': the original bf16 weights; 'fp8'/'nvfp4': NVIDIA's Model Optimizer checkpoint."""
    revision: str
    """The 40-hex commit of the repository that is downloaded (for fp8/nvfp4: NVIDIA's
    pre-quantized repository, not the original one); branches and tags are refused."""

    @field_validator("model")
    @classmethod
    def _known(cls, model: str) -> str:
        if model not in MODELS:
            close = difflib.get_close_matches(model, list(MODELS), n=1)
            fix = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(sorted(MODELS))}"
            raise ValueError(f"model '{model}' is not in the catalog: {fix} (or add it to engines/catalog.py)")
        return model

    @field_validator("quantization")
    @classmethod
    def _published(cls, quantization: str, info: ValidationInfo) -> str:
        model = info.data.get("model")
        if model is not None and checkpoint_repository(model, quantization) is None:
            available = sorted(q for (m, q) in QUANTIZED_CHECKPOINTS if m == model)
            raise ValueError(
                f"'{quantization}' for '{model}': NVIDIA publishes no pre-quantized checkpoint of it: use "
                f"one of {', '.join(['none', *available])}"
            )
        return quantization

    @field_validator("revision")
    @classmethod
    def _pinned(cls, revision: str, info: ValidationInfo) -> str:
        if _REVISION.match(revision):
            return revision
        model, quantization = info.data.get("model"), info.data.get("quantization")
        repository = checkpoint_repository(model, quantization) if model and quantization else None
        shown = revision if len(revision) <= 48 else revision[:45] + "..."
        where = f" of {repository} (huggingface.co/{repository}/commits/main)" if repository else ""
        raise ValueError(f"'{shown}' is not a pinned commit: use the 40-hex commit id{where}")

    @property
    def repository(self) -> str:
        """The Hugging Face repository downloaded for this model and precision."""
        repository = checkpoint_repository(self.model, self.quantization)
        assert repository is not None  # refused by the validator
        return repository

    @property
    def info(self) -> ModelInfo:
        """The catalog entry (architecture facts)."""
        return MODELS[self.model]

    @property
    def gated(self) -> bool:
        """Whether a token is needed: NVIDIA's checkpoints inherit the original model's licence gate."""
        return self.info.gated

    def key(self) -> str:
        """Content address of repository + revision + quantization (``engines.prepare.model_key``)."""
        return model_key(self)

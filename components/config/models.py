"""``disagg:models``: the checkpoints model preparation puts in the shared store (llmapi runtime).

Each entry names a catalog model, a pinned Hugging Face commit and a precision; the precision
selects NVIDIA's pre-quantized Model Optimizer checkpoint (engines/catalog.py
``QUANTIZED_CHECKPOINTS``), so nothing is quantized at serving time and the revision pins the
repository that is really downloaded.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import model_validator

from components.config.base import ConfigModel
from engines.catalog import MODELS, QUANTIZED_CHECKPOINTS, ModelInfo, checkpoint_repository
from engines.prepare import model_key

Quantization = Literal["none", "fp8", "nvfp4"]
_REVISION = re.compile(r"^[0-9a-f]{40}$")


class ModelSourceConfig(ConfigModel):
    """One checkpoint: catalog model, pinned revision, precision."""

    model: str
    """Key in engines/catalog.py (e.g. 'llama-3.1-8b-instruct')."""
    revision: str
    """The 40-hex commit of the repository that is downloaded (for fp8/nvfp4: NVIDIA's
    pre-quantized repository, not the original one); branches and tags are refused."""
    quantization: Quantization = "none"
    """'none': the original bf16 weights; 'fp8'/'nvfp4': NVIDIA's Model Optimizer checkpoint."""

    @model_validator(mode="after")
    def _known_and_pinned(self) -> ModelSourceConfig:
        if self.model not in MODELS:
            raise ValueError(
                f"model '{self.model}' is not in the catalog (known: {', '.join(sorted(MODELS))}): use one "
                "of them or add it to engines/catalog.py"
            )
        repository = checkpoint_repository(self.model, self.quantization)
        if repository is None:
            available = sorted(q for (m, q) in QUANTIZED_CHECKPOINTS if m == self.model)
            choices = ", ".join(["none", *available])
            raise ValueError(
                f"quantization '{self.quantization}' of '{self.model}': NVIDIA publishes no pre-quantized "
                f"checkpoint for it: use one of {choices}"
            )
        if not _REVISION.match(self.revision):
            shown = self.revision if len(self.revision) <= 48 else self.revision[:45] + "..."
            raise ValueError(
                f"revision '{shown}' is not a pinned commit: use the 40-hex commit id of {repository} "
                f"(huggingface.co/{repository}/commits/main)"
            )
        return self

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

"""The typed stack configuration and its validation, read once in ``__main__.py`` — nothing else.

The lowest layer of ``components``: it imports nothing above it (``tests/test_layout.py``). The facts
validation needs live here too (instance types, scheduling types, the subnet plan, kubeconfig reading),
so the cluster layer builds on them instead of config reaching up into it.
"""

from components.config.deployment import ImagesConfig, ModelDeploymentConfig, WorkerGroupConfig
from components.config.images import ImageRef, parse_image, trtllm_version_of
from components.config.loader import OFFLINE_SECRET, ConfigError, load_from_pulumi, load_stack_config
from components.config.models import ModelSourceConfig
from components.config.stack import NAMESPACE, StackConfig
from engines.llm_api import CacheTransceiverOptions, CudaGraphOptions, KvCacheOptions, LlmApiOptions

__all__ = [
    "NAMESPACE",
    "OFFLINE_SECRET",
    "CacheTransceiverOptions",
    "ConfigError",
    "CudaGraphOptions",
    "ImageRef",
    "ImagesConfig",
    "KvCacheOptions",
    "LlmApiOptions",
    "ModelDeploymentConfig",
    "ModelSourceConfig",
    "StackConfig",
    "WorkerGroupConfig",
    "load_from_pulumi",
    "load_stack_config",
    "parse_image",
    "trtllm_version_of",
]

"""Typed stack configuration, read once in ``__main__.py``."""

from components.config.loader import OFFLINE_SECRET, ConfigError, load_from_pulumi, load_stack_config
from components.config.stack import NAMESPACE, StackConfig

__all__ = ["NAMESPACE", "OFFLINE_SECRET", "ConfigError", "StackConfig", "load_from_pulumi", "load_stack_config"]

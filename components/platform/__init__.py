"""Platform layer: the operators and controllers GPU serving needs, chosen by the cluster's fabric."""

from components.platform.operators import PlatformOperators

__all__ = ["PlatformOperators"]

"""Container image references and the TensorRT-LLM generation each image belongs to.

The two runtimes need different TensorRT-LLM generations: ``engine`` (Triton's C++
``inflight_batcher_llm`` backend serving ``trtllm-build`` engines) ends with TensorRT-LLM 1.2,
as upstream removed the TensorRT-engine backend on main in July 2026 (the 1.3 line:
docs/source/legacy/tensorrt-backend-removal.md; NVIDIA/TensorRT-LLM PRs #15763, #15767,
#15907 "Remove legacy TensorRT-engine Triton backend", #15918; tensorrtllm_backend PR #858);
``llmapi`` (``trtllm-serve`` on the PyTorch backend) needs the 1.x LLM API, from 1.0.
An image is placed in a generation by its tag -- ``nvcr.io/nvidia/tensorrt-llm/release:X.Y[.Z]``
directly, ``nvcr.io/nvidia/tritonserver:YY.MM-trtllm-python-py3`` through
:data:`TRITON_TRTLLM_VERSIONS` -- or, for images the tables cannot place, by the version the
stack declares (``images.trtllmVersion`` / ``images.tritonTrtllmVersion``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from runtime.capabilities import Capabilities, capabilities, generation_of

Runtime = Literal["llmapi", "engine"]

DEFAULT_TRTLLM_IMAGE = "nvcr.io/nvidia/tensorrt-llm/release:1.2.1"
"""The latest TensorRT-LLM release (not a release candidate) found upstream: 1.2.1, the version
tritonserver 26.05 ships (triton-inference-server/server issue #8805, May 2026); main is at
1.3.0rc21-rc24 (README badge, GitHub releases page), whose release containers are pre-releases."""
DEFAULT_GENERATION = generation_of(DEFAULT_TRTLLM_IMAGE.rsplit(":", 1)[1])
"""Capability-table generation of :data:`DEFAULT_TRTLLM_IMAGE` ('1.2'): what is rendered for
when a caller names none."""
DEFAULT_TRITON_TRTLLM_IMAGE = "nvcr.io/nvidia/tritonserver:25.10-trtllm-python-py3"
"""Triton 25.10 with TensorRT-LLM 1.0.0, the version the engine-build flags were checked against."""

TRITON_TRTLLM_VERSIONS: dict[str, str] = {
    "24.05": "0.9.0",
    "24.06": "0.10.0",
    "24.07": "0.11.0",
    "24.08": "0.12.0",
    "24.09": "0.13.0",
    "24.10": "0.14.0",
    "24.11": "0.15.0",
    "24.12": "0.16.0",
    "25.01": "0.17.0",
    "25.06": "0.20.0",
    "25.07": "0.20.0",
    "25.08": "0.21.0",
    "25.09": "1.0.0",
    "25.10": "1.0.0",
    "25.11": "1.0.3",
    "25.12": "1.1.0",
    "26.05": "1.2.1",
}
"""tritonserver ``<YY.MM>-trtllm-python-py3`` -> the TensorRT-LLM version inside. Source: Triton's
Release Compatibility Matrix, container trtllm-python-py3
(docs.nvidia.com/deeplearning/triton-inference-server/user-guide/docs/introduction/compatibility.html,
24.05-25.12; 25.11 lists "1.0.3.2510"), and triton-inference-server/server issue #8805 for 26.05
("ships TensorRT-LLM 1.2.1"). Months missing here (25.02-25.05, 26.01-26.04, 26.06+) were not
found in a citable source: such images need ``images.tritonTrtllmVersion``."""

RUNTIME_VERSIONS: dict[Runtime, tuple[tuple[int, int], tuple[int, int] | None]] = {
    "llmapi": ((1, 0), None),
    "engine": ((0, 9), (1, 2)),
}
"""Runtime -> (lowest, highest or None) TensorRT-LLM major.minor it runs on."""

_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_RELEASE_TAG = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:(?:rc|\.post|\.dev)[0-9.a-z]*)?$")
_TRITON_TAG = re.compile(r"^(\d\d\.\d\d)-trtllm-python-py3$")
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.\d+)?(?:rc\d+)?(?:\.post\d+)?$")


@dataclass(frozen=True)
class ImageRef:
    """One parsed image reference: ``[registry/]repository[:tag][@sha256:digest]``."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def pinned(self) -> bool:
        """A digest, or an explicit tag other than 'latest'."""
        return self.digest is not None or (self.tag is not None and self.tag != "latest")

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image(reference: str) -> ImageRef:
    """Split ``reference`` into registry, repository, tag and digest (ValueError if malformed).

    Follows the distribution reference grammar: the first path component is a registry when it
    contains '.' or ':' or is 'localhost'; otherwise the image is on Docker Hub.
    """
    text = reference.strip()
    if not text or text != reference or " " in text:
        raise ValueError(f"'{reference}' is not an image reference")
    name, _, digest = text.partition("@")
    if digest and not _DIGEST.match(digest):
        raise ValueError(f"'{reference}' has a malformed digest '{digest}' (expected sha256:<64 hex>)")
    tag: str | None = None
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.match(tag):
            raise ValueError(f"'{reference}' has a malformed tag '{tag}'")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry, path = parts[0], parts[1:]
    else:
        registry, path = "docker.io", parts
    if not path or not all(_COMPONENT.match(p) for p in path):
        raise ValueError(f"'{reference}' has a malformed repository '{'/'.join(path)}'")
    return ImageRef(registry=registry, repository="/".join(path), tag=tag, digest=digest or None)


def parse_version(text: str) -> tuple[int, int] | None:
    """Major and minor of a TensorRT-LLM version string ('1.2.1', '1.3.0rc24'); None if not one."""
    match = _VERSION.match(text.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def trtllm_version_of(image: ImageRef) -> str | None:
    """The TensorRT-LLM version an NGC image carries, from its tag; None if the tables cannot tell."""
    if image.registry != "nvcr.io" or image.tag is None:
        return None
    if image.repository == "nvidia/tensorrt-llm/release":
        match = _RELEASE_TAG.match(image.tag)
        return image.tag if match else None
    if image.repository == "nvidia/tritonserver":
        match = _TRITON_TAG.match(image.tag)
        return TRITON_TRTLLM_VERSIONS.get(match.group(1)) if match else None
    return None


def _range_text(runtime: Runtime) -> str:
    low, high = RUNTIME_VERSIONS[runtime]
    if high is None:
        return f">= {low[0]}.{low[1]}"
    return f"{low[0]}.{low[1]} to {high[0]}.{high[1]}"


def check_runtime_image(
    runtime: Runtime, key: str, reference: str, declared_version: str | None, version_key: str
) -> list[str]:
    """Whether ``reference`` (config key ``key``) carries a TensorRT-LLM that ``runtime`` runs on.

    ``declared_version`` (config key ``version_key``) wins over the tables.
    """
    try:
        image = parse_image(reference)
    except ValueError:
        return []  # the reference itself is refused once, by validation.check_stack (image_problem)
    if declared_version is not None:
        version = declared_version
        origin = f"{version_key} {declared_version}"
    else:
        found = trtllm_version_of(image)
        if found is None:
            return [
                f"{key}: cannot tell which TensorRT-LLM version '{reference}' carries (only "
                "nvcr.io/nvidia/tensorrt-llm/release:X.Y and the tritonserver YY.MM-trtllm-python-py3 "
                f"tags in the compatibility table are known): declare it with {version_key}, e.g. '1.2.1'"
            ]
        version = found
        origin = f"TensorRT-LLM {found}"
    parsed = parse_version(version)
    if parsed is None:
        return [f"{version_key}: '{version}' is not a TensorRT-LLM version: write e.g. '1.2.1'"]
    low, high = RUNTIME_VERSIONS[runtime]
    if parsed < low or (high is not None and parsed > high):
        if runtime == "engine":
            why = (
                "TensorRT-LLM removed the TensorRT-engine backend (trtllm-build, Triton's "
                "inflight_batcher_llm) in 1.3"
            )
            fix = (
                "use runtime: llmapi for this deployment, or a tritonserver image carrying "
                "TensorRT-LLM <= 1.2 (e.g. nvcr.io/nvidia/tritonserver:25.10-trtllm-python-py3)"
            )
        else:
            why = "trtllm-serve with the PyTorch LLM API needs TensorRT-LLM 1.0 or newer"
            fix = f"use a newer image, e.g. {DEFAULT_TRTLLM_IMAGE}"
        return [
            f"{key}: '{reference}' carries {origin}, but runtime '{runtime}' needs {_range_text(runtime)} "
            f"({why}): {fix}"
        ]
    return []


ImageFeature = Literal["nixl-libfabric", "uvloop"]
"""What an image carries beyond its base, as the stack declares it (``images.trtllmFeatures``,
``images.frontendFeatures``): ``nixl-libfabric`` -- libfabric and NIXL's LIBFABRIC plugin, with
``NIXL_PLUGINS_DIR`` pointing at it (``images/worker/Dockerfile``); ``uvloop`` -- the CPU tiers'
event loop (``images/tiers/Dockerfile``)."""

STOCK_TRTLLM_REPOSITORY = "nvidia/tensorrt-llm/release"
"""NGC's release image: it never carries libfabric nor NIXL's LIBFABRIC plugin (upstream
docs/source/features/disagg-serving.md @0434b982fa38), nor uvloop."""


def is_stock_trtllm(image: ImageRef) -> bool:
    """``nvcr.io/nvidia/tensorrt-llm/release:*``: the image as NVIDIA ships it."""
    return image.registry == "nvcr.io" and image.repository == STOCK_TRTLLM_REPOSITORY


def trtllm_generation(reference: str, declared_version: str | None) -> str | None:
    """The capability-table generation (``'1.2'``) of an llmapi image: the declared version wins
    over the tag; None when neither tells or the generation is not in the table."""
    version = declared_version
    if version is None:
        try:
            version = trtllm_version_of(parse_image(reference))
        except ValueError:
            return None
    if version is None:
        return None
    try:
        return generation_of(version)
    except ValueError:
        return None


def trtllm_capabilities(reference: str, declared_version: str | None) -> Capabilities | None:
    """The capability row of an llmapi image (None: its generation is unknown, refused elsewhere)."""
    generation = trtllm_generation(reference, declared_version)
    return capabilities(generation) if generation is not None else None

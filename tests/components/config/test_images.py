"""Image references parsed and placed in a TensorRT-LLM generation."""

from __future__ import annotations

import pytest

from components.config.images import (
    DEFAULT_TRITON_TRTLLM_IMAGE,
    DEFAULT_TRTLLM_IMAGE,
    TRITON_TRTLLM_VERSIONS,
    ImageRef,
    check_runtime_image,
    parse_image,
    parse_version,
    trtllm_version_of,
)
from components.config.validation import image_problem

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("nvcr.io/nvidia/tensorrt-llm/release:1.2.1", ImageRef("nvcr.io", "nvidia/tensorrt-llm/release", "1.2.1", None)),
        (f"nvcr.io/nvidia/tritonserver:25.10-trtllm-python-py3@{DIGEST}",
         ImageRef("nvcr.io", "nvidia/tritonserver", "25.10-trtllm-python-py3", DIGEST)),
        (f"registry.local:5000/ml/trtllm@{DIGEST}", ImageRef("registry.local:5000", "ml/trtllm", None, DIGEST)),
        ("python:3.12-slim", ImageRef("docker.io", "python", "3.12-slim", None)),
        ("localhost/team/image:v1", ImageRef("localhost", "team/image", "v1", None)),
    ],
)
def test_parse_image(reference: str, expected: ImageRef) -> None:
    assert parse_image(reference) == expected
    assert str(parse_image(reference)).endswith(reference.split("/")[-1])


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("nvcr.io/nvidia/Tritonserver:25.10", "malformed repository 'nvidia/Tritonserver'"),
        ("nvcr.io/nvidia/tritonserver:bad tag", "is not an image reference"),
        ("nvcr.io/nvidia/tritonserver@sha256:1234", "malformed digest 'sha256:1234'"),
        ("nvcr.io/nvidia/tritonserver:-x", "malformed tag '-x'"),
    ],
)
def test_malformed_references(reference: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_image(reference)


def test_pinning() -> None:
    assert parse_image("nvcr.io/nvidia/tensorrt-llm/release:1.2.1").pinned
    assert parse_image(f"nvcr.io/nvidia/tensorrt-llm/release@{DIGEST}").pinned
    assert not parse_image("nvcr.io/nvidia/tensorrt-llm/release:latest").pinned
    assert not parse_image("nvcr.io/nvidia/tensorrt-llm/release").pinned


@pytest.mark.parametrize(
    ("reference", "version"),
    [
        (DEFAULT_TRTLLM_IMAGE, "1.2.1"),
        ("nvcr.io/nvidia/tensorrt-llm/release:1.3.0rc24", "1.3.0rc24"),
        ("nvcr.io/nvidia/tensorrt-llm/release:1.2.0rc6.post2", "1.2.0rc6.post2"),
        (DEFAULT_TRITON_TRTLLM_IMAGE, "1.0.0"),
        ("nvcr.io/nvidia/tritonserver:25.12-trtllm-python-py3", "1.1.0"),
        ("nvcr.io/nvidia/tritonserver:26.05-trtllm-python-py3", "1.2.1"),
        ("nvcr.io/nvidia/tritonserver:24.06-trtllm-python-py3", "0.10.0"),
        ("nvcr.io/nvidia/tritonserver:26.02-trtllm-python-py3", None),  # not in a citable table
        ("nvcr.io/nvidia/tritonserver:25.10-py3", None),  # no TensorRT-LLM
        ("registry.example.com/nvidia/tensorrt-llm/release:1.2.1", None),  # a mirror: declare it
    ],
)
def test_generation_from_the_tag(reference: str, version: str | None) -> None:
    assert trtllm_version_of(parse_image(reference)) == version


def test_the_triton_table_is_monotonic() -> None:
    versions = [parse_version(TRITON_TRTLLM_VERSIONS[month]) for month in sorted(TRITON_TRTLLM_VERSIONS)]
    assert versions == sorted(versions)  # type: ignore[type-var]


def test_runtimes_accept_their_generation_only() -> None:
    def check(runtime, image, declared=None):
        return check_runtime_image(runtime, "images.x", image, declared, "images.xVersion")

    assert check("llmapi", DEFAULT_TRTLLM_IMAGE) == []
    assert check("llmapi", "nvcr.io/nvidia/tritonserver:25.10-trtllm-python-py3") == []  # 1.0 has trtllm-serve
    assert check("engine", "nvcr.io/nvidia/tensorrt-llm/release:1.2.1") == []
    assert check("engine", "nvcr.io/nvidia/tensorrt-llm/release:1.3.0rc24") != []
    assert check("llmapi", "nvcr.io/nvidia/tritonserver:25.08-trtllm-python-py3") != []  # 0.21
    assert check("engine", "mirror.local/trtllm:mine", declared="1.2") == []
    assert check("engine", "mirror.local/trtllm:mine", declared="1.3.0") != []
    assert check("llmapi", "mirror.local/trtllm:mine", declared="one") == [
        "images.xVersion: 'one' is not a TensorRT-LLM version: write e.g. '1.2.1'"
    ]


def test_each_runtime_gets_its_image() -> None:
    from components.config import ImagesConfig

    images = ImagesConfig()
    assert images.runtime_image("llmapi") == DEFAULT_TRTLLM_IMAGE
    assert images.runtime_image("engine") == DEFAULT_TRITON_TRTLLM_IMAGE
    assert images.frontend_image("llmapi") == DEFAULT_TRTLLM_IMAGE
    assert images.frontend_image() == DEFAULT_TRITON_TRTLLM_IMAGE  # the engine runtime's, as before
    assert ImagesConfig(frontend="python:3.12-slim").frontend_image("llmapi") == "python:3.12-slim"


IMAGE = "nvcr.io/nvidia/tritonserver"
LONG_TAG = "a" * 128


@pytest.mark.parametrize(
    ("reference", "allow_mutable", "expected"),
    [
        (f"{IMAGE}:25.10", False, None),
        (f"{IMAGE}@{DIGEST}", False, None),
        (f"{IMAGE}:latest@{DIGEST}", False, None),  # the digest pins it
        (f"{IMAGE}:{LONG_TAG}", False, None),
        (f"{IMAGE}:latest", True, None),
        ("nvcr.io/nvidia/Tritonserver:25.10", False,
         "k: 'nvcr.io/nvidia/Tritonserver:25.10' is not an image reference (registry/repository:tag or @sha256:…, "
         "lowercase repository): fix it"),
        (f"{IMAGE}:25.10@sha256:1234", False,
         f"k: '{IMAGE}:25.10@sha256:1234' has a malformed digest (sha256: and 64 lowercase hex digits): copy it again"),
        (f"{IMAGE}:", False, f"k: '{IMAGE}:' has an empty tag (letters, digits, '_', '.', '-', at most 128): fix it"),
        (f"{IMAGE}:-x", False, f"k: '{IMAGE}:-x' has a malformed tag (letters, digits, '_', '.', '-', at most 128): fix it"),
        (f"{IMAGE}:{LONG_TAG}b", False,
         f"k: '{IMAGE}:{LONG_TAG}b' has a malformed tag (letters, digits, '_', '.', '-', at most 128): fix it"),
        (IMAGE, True, f"k: '{IMAGE}' is not pinned: add a release tag or an @sha256 digest"),
        (f"{IMAGE}:Latest", False,
         f"k: tag 'Latest' of '{IMAGE}:Latest' moves (a branch or channel, not a release): pin a release tag or "
         "@sha256 digest, or set disagg:platform.security.allowMutableImageTags: true"),
    ],
)
def test_image_references_of_the_stack_file(reference: str, allow_mutable: bool, expected: str | None) -> None:
    """validation.image_problem: what check_stack says of each images.* key."""
    assert image_problem("k", reference, allow_mutable) == expected

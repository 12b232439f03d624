"""In-container engine build: ``python -m engines.build --spec /config/spec.json --store /models``.

Runs in the TensorRT-LLM container from a ConfigMap-mounted copy of this package, so it uses
the standard library only (plus :mod:`engines.build_args`, also stdlib-only); tensorrt_llm is
reached through subprocesses and, for its version, a lazy import behind :class:`Runner`.

The spec file is a *build request* written by ``components.models.engine_build``::

    {"spec": <EngineSpec.model_dump(mode="json")>, "contentHash": "<16 hex>",
     "image": "nvcr.io/nvidia/tritonserver:25.10-trtllm-python-py3", "engineKey": "<16 hex>",
     "architecture": "LlamaForCausalLM", "checkpoint": "meta-llama/Llama-3.1-8B-Instruct"}

The engine's storage key (:func:`engine_key`) is the spec's content hash salted with the image:
engines only load in the TensorRT-LLM version that built them, so a new image gets a new engine
directory (built while the old one keeps serving) instead of breaking the running one.

Steps, each idempotent:

1. ``<store>/engines/<model>/<engine_key>/manifest.json`` complete -> exit 0, nothing built.
2. Weights: a HF repo id is downloaded once to ``<store>/hf/<repo id>/`` (marker ``.complete``);
   an absolute path is used as is.
3. Conversion (convert_checkpoint.py or quantize.py) and ``trtllm-build`` into
   ``<store>/engines/<model>/.build-<hash>-<pid>/``, tokenizer files copied to ``tokenizer/``,
   ``manifest.json`` written last, then one ``rename`` puts the engine in place: readers see
   either no directory or a complete one.

Exit codes: 0 built or up to date; 1 a step failed; 2 bad request; 3 an engine exists for this
key but was built by another TensorRT-LLM version (the image tag was moved to another build).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from . import build_args

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
DOWNLOAD_MARKER = ".complete"

EXIT_OK, EXIT_FAILED, EXIT_BAD_REQUEST, EXIT_VERSION_MISMATCH = 0, 1, 2, 3


class Runner(Protocol):
    """The seam to the outside world: tests replace it with a fake."""

    def run(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        """Run ``argv`` to completion; raise on a non-zero exit."""

    def tensorrt_llm_version(self) -> str:
        """Version of the TensorRT-LLM in this container."""


class SubprocessRunner:
    """The real runner: subprocesses inheriting stdout/stderr, so logs stream to the pod log."""

    def run(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        subprocess.run(list(argv), check=True, env={**os.environ, **(env or {})})

    def tensorrt_llm_version(self) -> str:
        from importlib import metadata

        try:
            return metadata.version("tensorrt_llm")
        except metadata.PackageNotFoundError:
            import tensorrt_llm  # lazy: only present in the TRT-LLM container

            return str(tensorrt_llm.__version__)


class BuildError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


def content_hash(spec: Mapping[str, Any]) -> str:
    """``EngineSpec.content_hash`` recomputed from its JSON dump (same canonical form)."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def engine_key(spec: Mapping[str, Any], image: str | None) -> str:
    """Storage key of the engine ``image`` builds from ``spec``: 16 hex characters. Without an
    image (requests written by hand), the content hash itself."""
    digest = content_hash(spec)
    if not image:
        return digest
    return hashlib.sha256(f"{digest}\n{image}".encode()).hexdigest()[:16]


def engine_dir(store: Path, spec: Mapping[str, Any], image: str | None = None) -> Path:
    """``<store>/engines/<model>/<engine_key>``: where this spec's engine lives."""
    return store / "engines" / spec["model"] / engine_key(spec, image)


REQUIRED_SPEC_KEYS = (
    "model", "dtype", "quantization", "kv_cache_dtype", "tp_size", "pp_size", "max_batch_size",
    "max_input_len", "max_seq_len", "max_num_tokens", "max_beam_width", "paged_kv_cache",
    "remove_input_padding", "context_fmha", "use_paged_context_fmha", "use_fused_mlp",
    "gemm_plugin", "gpt_attention_plugin", "tokens_per_block", "multiple_profiles",
)


def load_request(path: Path) -> dict[str, Any]:
    """Read and check a build request; BuildError(EXIT_BAD_REQUEST) says what is wrong."""
    try:
        request = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise BuildError(f"cannot read build request {path}: {err}", EXIT_BAD_REQUEST) from err
    missing = [key for key in ("spec", "architecture", "checkpoint") if key not in request]
    if missing:
        raise BuildError(f"build request {path} lacks {', '.join(missing)}", EXIT_BAD_REQUEST)
    spec = request["spec"]
    missing = [key for key in REQUIRED_SPEC_KEYS if key not in spec]
    if missing:
        raise BuildError(
            f"spec in {path} lacks {', '.join(missing)}: write it with EngineSpec.model_dump(mode='json')",
            EXIT_BAD_REQUEST,
        )
    given = request.get("contentHash")
    if given is not None and given != content_hash(spec):
        raise BuildError(
            f"contentHash {given} in {path} does not match the spec's hash {content_hash(spec)}: "
            "the spec was edited after rendering; re-run pulumi up",
            EXIT_BAD_REQUEST,
        )
    key = request.get("engineKey")
    if key is not None and key != engine_key(spec, request.get("image")):
        raise BuildError(
            f"engineKey {key} in {path} does not match spec and image "
            f"({engine_key(spec, request.get('image'))}): the request was edited after rendering; "
            "re-run pulumi up",
            EXIT_BAD_REQUEST,
        )
    return request


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of ``directory`` if it is complete and every listed file has its size."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not manifest.get("complete") or manifest.get("format") != MANIFEST_FORMAT:
        return None
    for entry in manifest.get("files", []):
        file = directory / entry["path"]
        if not file.is_file() or file.stat().st_size != entry["bytes"]:
            return None
    return manifest


def _files(root: Path) -> list[dict[str, Any]]:
    return [
        {"path": str(p.relative_to(root)), "bytes": p.stat().st_size}
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]


def _log(message: str) -> None:
    print(f"[engine-build] {message}", flush=True)


def build(
    request: Mapping[str, Any],
    store: Path,
    runner: Runner,
    examples_dir: str = build_args.DEFAULT_EXAMPLES_DIR,
    workers: int | None = None,
    python: str = "python3",
    clock: Callable[[], float] = time.monotonic,
) -> Path:
    """Build the engine ``request`` describes unless it exists; return its directory."""
    spec = request["spec"]
    image = request.get("image")
    digest = engine_key(spec, image)
    target = engine_dir(store, spec, image)
    version = runner.tensorrt_llm_version()
    existing = read_manifest(target)
    if existing is not None:
        built_with = existing.get("tensorrtLlmVersion")
        if built_with != version:
            raise BuildError(
                f"{target} holds an engine built with tensorrt_llm {built_with}, but this container "
                f"has {version}; engines do not load across versions (was the image tag moved?): "
                "pin the image by digest, or delete the directory to rebuild",
                EXIT_VERSION_MISMATCH,
            )
        _log(f"engine {digest} is up to date at {target}; nothing to build")
        return target
    if target.exists():  # a directory without a complete manifest: never produced by this script
        stale = target.with_name(f".stale-{digest}-{os.getpid()}")
        _log(f"{target} exists without a complete manifest; moving it to {stale} and rebuilding")
        target.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)

    workers = workers or spec["tp_size"] * spec["pp_size"]
    work = target.with_name(f".build-{digest}-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    checkpoint_out, engine_out = work / "checkpoint", work / "engine"
    checkpoint_out.mkdir(parents=True)
    timings: dict[str, float] = {}
    commands: list[list[str]] = []
    started = clock()

    def step(name: str, argv: list[str]) -> None:
        _log(f"{name}: {' '.join(argv)}")
        commands.append(argv)
        t0 = clock()
        try:
            runner.run(argv)
        except Exception as err:
            raise BuildError(f"{name} failed: {err}") from err
        timings[name] = round(clock() - t0, 3)

    try:
        model_dir = _weights(request["checkpoint"], store, python, step)
        convert = build_args.convert_argv(
            spec, request["architecture"], str(model_dir), str(checkpoint_out), examples_dir, workers, python
        )
        if not Path(convert[1]).is_file():
            raise BuildError(
                f"converter {convert[1]} is missing: point --examples-dir at TensorRT-LLM's examples/ "
                f"of version {version} (the Triton TRT-LLM image has them in /app/examples)"
            )
        step("convert", convert)
        step("build", build_args.trtllm_build_argv(spec, str(checkpoint_out), str(engine_out), workers))
        missing = [f for f in build_args.expected_engine_files(spec) if not (engine_out / f).is_file()]
        if missing:
            raise BuildError(f"trtllm-build finished but {', '.join(missing)} missing in {engine_out}")
        _copy_tokenizer(model_dir, engine_out / "tokenizer")
        timings["total"] = round(clock() - started, 3)
        manifest = {
            "format": MANIFEST_FORMAT,
            "complete": True,
            "contentHash": content_hash(spec),
            "engineKey": digest,
            "image": image,
            "model": spec["model"],
            "architecture": request["architecture"],
            "checkpoint": request["checkpoint"],
            "spec": dict(spec),
            "tensorrtLlmVersion": version,
            "builtAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "timingsSeconds": timings,
            "commands": commands,
            "files": _files(engine_out),
        }
        (engine_out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        try:
            engine_out.rename(target)
        except OSError:
            if read_manifest(target) is None:
                raise
            _log(f"another build finished {target} first; keeping it")
        _log(f"engine {digest} ready at {target} in {timings['total']:.0f}s")
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _weights(checkpoint: str, store: Path, python: str, step: Callable[[str, list[str]], None]) -> Path:
    """Local directory of the HF weights, downloading a repo id once into the store."""
    if checkpoint.startswith("/"):
        path = Path(checkpoint)
        if not (path / "config.json").is_file():
            raise BuildError(f"checkpoint {checkpoint} has no config.json: point checkpoint at a HF model directory")
        return path
    local = store / "hf" / checkpoint
    if (local / DOWNLOAD_MARKER).is_file():
        _log(f"weights of {checkpoint} already in {local}")
        return local
    local.mkdir(parents=True, exist_ok=True)
    step("download", build_args.download_argv(checkpoint, str(local), python))
    (local / DOWNLOAD_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")
    return local


def _copy_tokenizer(model_dir: Path, destination: Path) -> None:
    present = [model_dir / name for name in build_args.TOKENIZER_FILES if (model_dir / name).is_file()]
    if not present:
        return
    destination.mkdir(parents=True, exist_ok=True)
    for file in present:
        shutil.copy2(file, destination / file.name)


def main(argv: Sequence[str] | None = None, runner: Runner | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engines.build", description=__doc__.split("\n")[0])
    parser.add_argument("--spec", required=True, type=Path, help="build request JSON")
    parser.add_argument("--store", required=True, type=Path, help="shared-storage root (engines/, hf/)")
    parser.add_argument(
        "--examples-dir",
        default=os.environ.get("TRTLLM_EXAMPLES_DIR", build_args.DEFAULT_EXAMPLES_DIR),
        help="TensorRT-LLM examples/ of the container's version",
    )
    parser.add_argument("--workers", type=int, default=None, help="parallel build workers (default: tp × pp)")
    args = parser.parse_args(argv)
    try:
        request = load_request(args.spec)
        build(request, args.store, runner or SubprocessRunner(), args.examples_dir, args.workers, sys.executable)
    except BuildError as err:
        _log(f"error: {err}")
        return err.code
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

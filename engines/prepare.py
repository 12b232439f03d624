"""In-container model preparation: ``python -m engines.prepare --request /opt/disagg/request.json --store /models``.

Puts one Hugging Face checkpoint (a pinned commit of the original weights or of NVIDIA's
pre-quantized Model Optimizer checkpoint) on shared storage, once, for ``trtllm-serve`` to load
with the LLM API. Runs in the TensorRT-LLM release image from a ConfigMap-mounted copy of this
file: standard library only, plus ``huggingface_hub`` (shipped in that image) reached lazily
behind :class:`Downloader`, so tests drive it with a fake.

The request is written by ``components.models.model_preparation``::

    {"name": "llama-8b", "model": "llama-3.1-8b-instruct", "repository": "meta-llama/Llama-3.1-8B-Instruct",
     "revision": "<40 hex>", "quantization": "none", "gated": true, "modelKey": "<16 hex>"}

Layout: ``<store>/models/<name>/<model key>/`` where the model key (:func:`model_key`) is the
content address of repository + revision + quantization, so a changed revision lands beside the
weights still being served. Steps:

1. ``.complete`` and a valid ``manifest.json`` there -> exit 0, nothing downloaded;
2. a gated repository without ``HF_TOKEN`` -> exit 3 with the fix, before any download;
3. download into ``<store>/models/<name>/.partial-<key>-<pid>/``, check ``config.json``, write
   ``manifest.json`` (files and sizes), then one ``rename`` and the ``.complete`` marker: readers
   see no directory, or a complete one.

Exit codes: 0 prepared or up to date; 1 the download failed; 2 bad request; 3 gated model
without a token.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
DONE_MARKER = ".complete"
QUANTIZATIONS = ("none", "fp8", "nvfp4")
_REVISION = re.compile(r"^[0-9a-f]{40}$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

EXIT_OK, EXIT_FAILED, EXIT_BAD_REQUEST, EXIT_NO_TOKEN = 0, 1, 2, 3


class PrepareError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


class Downloader(Protocol):
    """The seam to Hugging Face: tests replace it with a fake."""

    def download(self, repository: str, revision: str, destination: Path, token: str | None) -> None:
        """Put the files of ``repository`` at ``revision`` into ``destination``; raise on failure."""


class HubDownloader:
    """``huggingface_hub.snapshot_download`` when importable, else its CLI (``hf download``)."""

    def download(self, repository: str, revision: str, destination: Path, token: str | None) -> None:
        try:
            from huggingface_hub import snapshot_download  # lazy: present in the TRT-LLM image
        except ImportError:
            cli = shutil.which("hf") or shutil.which("huggingface-cli")
            if cli is None:
                raise PrepareError(
                    "neither huggingface_hub nor its CLI is installed in this image: use the "
                    "nvcr.io/nvidia/tensorrt-llm/release image"
                ) from None
            argv = [cli, "download", repository, "--revision", revision, "--local-dir", str(destination)]
            env = {**os.environ, **({"HF_TOKEN": token} if token else {})}
            subprocess.run(argv, check=True, env=env)
            return
        snapshot_download(repo_id=repository, revision=revision, local_dir=str(destination), token=token)


def _field(source: Any, name: str) -> str:
    if isinstance(source, Mapping):
        return str(source[name])
    value = getattr(source, name)
    return str(value() if callable(value) else value)


def hf_token(env: Mapping[str, str]) -> str | None:
    """The Hugging Face token: ``HF_TOKEN``, else the file ``HF_TOKEN_PATH`` names (the Jobs mount
    the Secret there, as huggingface_hub reads it); None when neither holds one."""
    token = env.get("HF_TOKEN", "").strip()
    path = env.get("HF_TOKEN_PATH")
    if not token and path:
        with contextlib.suppress(OSError):
            token = Path(path).read_text().strip()
    return token or None


def model_key(source: Any) -> str:
    """Content address (16 hex) of a model source: repository + revision + quantization.

    ``source`` is a mapping with those keys or an object with those attributes (or methods),
    such as ``components.config.ModelSourceConfig``.
    """
    canonical = json.dumps(
        {name: _field(source, name) for name in ("repository", "revision", "quantization")},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def model_dir(store: Path, name: str, key: str) -> Path:
    """``<store>/models/<name>/<model key>``: where a prepared checkpoint lives."""
    return store / "models" / name / key


def load_request(path: Path) -> dict[str, Any]:
    """Read and check a preparation request; PrepareError(EXIT_BAD_REQUEST) says what is wrong."""
    try:
        request = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise PrepareError(f"cannot read request {path}: {err}", EXIT_BAD_REQUEST) from err
    if not isinstance(request, dict):
        raise PrepareError(f"request {path} is not a JSON object", EXIT_BAD_REQUEST)
    missing = [k for k in ("name", "repository", "revision", "quantization") if k not in request]
    if missing:
        raise PrepareError(f"request {path} lacks {', '.join(missing)}", EXIT_BAD_REQUEST)
    if not _NAME.match(str(request["name"])):
        raise PrepareError(f"name {request['name']!r} in {path} is not a DNS label", EXIT_BAD_REQUEST)
    if not _REVISION.match(str(request["revision"])):
        raise PrepareError(
            f"revision {request['revision']!r} in {path} is not a 40-hex commit: pin the commit", EXIT_BAD_REQUEST
        )
    if request["quantization"] not in QUANTIZATIONS:
        raise PrepareError(
            f"quantization {request['quantization']!r} in {path} is not one of {', '.join(QUANTIZATIONS)}",
            EXIT_BAD_REQUEST,
        )
    given = request.get("modelKey")
    if given is not None and given != model_key(request):
        raise PrepareError(
            f"modelKey {given} in {path} does not match repository, revision and quantization "
            f"({model_key(request)}): the request was edited after rendering; re-run pulumi up",
            EXIT_BAD_REQUEST,
        )
    return request


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of a complete directory (marker present, every listed file of its size)."""
    if not (directory / DONE_MARKER).is_file():
        return None
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("format") != MANIFEST_FORMAT:
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
        if p.is_file() and ".cache" not in p.relative_to(root).parts
    ]


def _log(message: str) -> None:
    print(f"[model-prep] {message}", flush=True)


def prepare(
    request: Mapping[str, Any],
    store: Path,
    downloader: Downloader,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """Materialize the checkpoint ``request`` names unless it is there; return its directory."""
    env = os.environ if environ is None else environ
    key = model_key(request)
    target = model_dir(store, str(request["name"]), key)
    repository, revision = str(request["repository"]), str(request["revision"])
    if read_manifest(target) is not None:
        _log(f"{repository}@{revision[:12]} is already prepared at {target}; nothing to do")
        return target
    token = hf_token(env)
    if request.get("gated", False) and token is None:
        raise PrepareError(
            f"{repository} is a gated model and no token is set (HF_TOKEN, or the file HF_TOKEN_PATH names): accept its licence on "
            "huggingface.co, then create the Secret named by disagg:hfTokenSecret with key HF_TOKEN "
            "(kubectl create secret generic hf-token --from-literal=HF_TOKEN=hf_...) and re-run",
            EXIT_NO_TOKEN,
        )
    if target.exists():  # left without a marker: never completed by this script
        stale = target.with_name(f".stale-{key}-{os.getpid()}")
        _log(f"{target} exists without {DONE_MARKER}; moving it to {stale} and downloading again")
        target.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    work = target.with_name(f".partial-{key}-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.monotonic()
    try:
        _log(f"downloading {repository}@{revision} into {work}")
        try:
            downloader.download(repository, revision, work, token)
        except PrepareError:
            raise
        except Exception as err:
            raise PrepareError(f"download of {repository}@{revision} failed: {err}") from err
        if not (work / "config.json").is_file():
            raise PrepareError(
                f"{repository}@{revision} has no config.json: it is not a Hugging Face model checkpoint"
            )
        manifest = {
            "format": MANIFEST_FORMAT,
            "name": request["name"],
            "model": request.get("model"),
            "repository": repository,
            "revision": revision,
            "quantization": request["quantization"],
            "modelKey": key,
            "preparedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "downloadSeconds": round(time.monotonic() - started, 3),
            "files": _files(work),
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        try:
            work.rename(target)
        except OSError:
            if read_manifest(target) is None:
                raise
            _log(f"another run prepared {target} first; keeping it")
            return target
        (target / DONE_MARKER).write_text(manifest["preparedAt"] + "\n")
        _log(f"{repository}@{revision[:12]} ready at {target}")
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None, downloader: Downloader | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engines.prepare", description=__doc__.split("\n")[0])
    parser.add_argument("--request", required=True, type=Path, help="preparation request JSON")
    parser.add_argument("--store", required=True, type=Path, help="shared-storage root (models/ below it)")
    args = parser.parse_args(argv)
    try:
        request = load_request(args.request)
        prepare(request, args.store, downloader or HubDownloader())
    except PrepareError as err:
        _log(f"error: {err}")
        return err.code
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

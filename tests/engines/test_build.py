"""The in-container build entrypoint, driven by a fake runner (no GPU, no TensorRT-LLM)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engines import build
from engines.spec import EngineSpec

ENGINES = Path(build.__file__).parent
L8 = "llama-3.1-8b-instruct"


class FakeRunner:
    """Records argv and writes what the real tools would: weights, checkpoint, engine files."""

    def __init__(self, version: str = "1.0.0", fail_on: str | None = None):
        self.calls: list[list[str]] = []
        self.version = version
        self.fail_on = fail_on

    def tensorrt_llm_version(self) -> str:
        return self.version

    def run(self, argv, env=None):
        argv = list(argv)
        self.calls.append(argv)
        tool = self.tool(argv)
        if tool == self.fail_on:
            raise subprocess.CalledProcessError(1, argv)
        if tool == "download":
            local = Path(argv[4])
            (local / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
            (local / "tokenizer.json").write_text('{"model": {}}')
            (local / "model.safetensors").write_bytes(b"w" * 100)
        elif tool in ("convert", "quantize"):
            out = Path(argv[argv.index("--output_dir") + 1])
            (out / "config.json").write_text("{}")
        elif tool == "trtllm-build":
            out = Path(argv[argv.index("--output_dir") + 1])
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.json").write_text("{}")
            world = int(argv[argv.index("--workers") + 1])
            for rank in range(world):
                (out / f"rank{rank}.engine").write_bytes(b"e" * (1000 + rank))

    @staticmethod
    def tool(argv: list[str]) -> str:
        if argv[0] == "trtllm-build":
            return "trtllm-build"
        if argv[1] == "-c":
            return "download"
        return "quantize" if argv[1].endswith("quantize.py") else "convert"

    def tools(self) -> list[str]:
        return [self.tool(a) for a in self.calls]


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    root = tmp_path / "examples"
    for script in ("models/core/llama/convert_checkpoint.py", "quantization/quantize.py"):
        (root / script).parent.mkdir(parents=True, exist_ok=True)
        (root / script).write_text("raise SystemExit('placeholder')\n")
    return root


def request_for(spec: EngineSpec) -> dict:
    return {
        "spec": spec.model_dump(mode="json"),
        "contentHash": spec.content_hash(),
        "architecture": "LlamaForCausalLM",
        "checkpoint": "meta-llama/Llama-3.1-8B-Instruct",
    }


def run_build(spec: EngineSpec, store: Path, examples: Path, runner: FakeRunner) -> Path:
    return build.build(request_for(spec), store, runner, str(examples), python="python3")


def test_hash_matches_engine_spec():
    spec = EngineSpec(model=L8, tp_size=4, quantization="fp8", kv_cache_dtype="fp8")
    assert build.content_hash(spec.model_dump(mode="json")) == spec.content_hash()


def test_first_run_downloads_converts_builds_in_order(tmp_path, examples):
    spec = EngineSpec(model=L8, tp_size=2)
    runner = FakeRunner()
    target = run_build(spec, tmp_path / "store", examples, runner)
    assert target == tmp_path / "store" / "engines" / L8 / spec.content_hash()
    assert runner.tools() == ["download", "convert", "trtllm-build"]
    download, convert, trtllm_build = runner.calls
    assert download[3:5] == ["meta-llama/Llama-3.1-8B-Instruct", str(tmp_path / "store/hf/meta-llama/Llama-3.1-8B-Instruct")]
    assert convert[1] == f"{examples}/models/core/llama/convert_checkpoint.py"
    checkpoint = convert[convert.index("--output_dir") + 1]
    assert trtllm_build[trtllm_build.index("--checkpoint_dir") + 1] == checkpoint
    assert trtllm_build[trtllm_build.index("--workers") + 1] == "2"


def test_manifest_describes_the_engine(tmp_path, examples):
    spec = EngineSpec(model=L8, tp_size=2)
    target = run_build(spec, tmp_path, examples, FakeRunner(version="1.0.0"))
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert manifest["contentHash"] == spec.content_hash()
    assert manifest["spec"] == spec.model_dump(mode="json")
    assert manifest["tensorrtLlmVersion"] == "1.0.0"
    assert set(manifest["timingsSeconds"]) == {"download", "convert", "build", "total"}
    files = {f["path"]: f["bytes"] for f in manifest["files"]}
    assert files["rank0.engine"] == 1000 and files["rank1.engine"] == 1001
    assert files["tokenizer/tokenizer.json"] == len('{"model": {}}')
    assert [c[0] for c in manifest["commands"]][-1] == "trtllm-build"


def test_no_work_directories_are_left(tmp_path, examples):
    run_build(EngineSpec(model=L8), tmp_path, examples, FakeRunner())
    assert [p.name for p in (tmp_path / "engines" / L8).iterdir()] == [EngineSpec(model=L8).content_hash()]


def test_second_run_does_nothing(tmp_path, examples):
    spec = EngineSpec(model=L8)
    first = run_build(spec, tmp_path, examples, FakeRunner())
    before = (first / "manifest.json").read_text()
    again = FakeRunner()
    assert run_build(spec, tmp_path, examples, again) == first
    assert again.calls == []
    assert (first / "manifest.json").read_text() == before


def test_changed_spec_builds_a_new_engine_reusing_weights(tmp_path, examples):
    old = run_build(EngineSpec(model=L8), tmp_path, examples, FakeRunner())
    runner = FakeRunner()
    new = run_build(EngineSpec(model=L8, max_batch_size=128), tmp_path, examples, runner)
    assert new != old and new.parent == old.parent
    assert runner.tools() == ["convert", "trtllm-build"]
    assert (old / "manifest.json").is_file()


def test_fp8_converts_with_modelopt(tmp_path, examples):
    runner = FakeRunner()
    run_build(EngineSpec(model=L8, quantization="fp8"), tmp_path, examples, runner)
    assert runner.tools() == ["download", "quantize", "trtllm-build"]


def test_incomplete_engine_is_rebuilt(tmp_path, examples):
    spec = EngineSpec(model=L8)
    target = run_build(spec, tmp_path, examples, FakeRunner())
    (target / "rank0.engine").write_bytes(b"truncated")
    runner = FakeRunner()
    run_build(spec, tmp_path, examples, runner)
    assert runner.tools() == ["convert", "trtllm-build"]
    assert (target / "rank0.engine").stat().st_size == 1000


def test_failed_step_leaves_no_engine(tmp_path, examples):
    spec = EngineSpec(model=L8)
    with pytest.raises(build.BuildError, match="build failed"):
        run_build(spec, tmp_path, examples, FakeRunner(fail_on="trtllm-build"))
    assert [p.name for p in (tmp_path / "engines" / L8).iterdir()] == []


def test_engine_of_another_version_is_refused(tmp_path, examples):
    spec = EngineSpec(model=L8)
    target = run_build(spec, tmp_path, examples, FakeRunner(version="1.0.0"))
    with pytest.raises(build.BuildError) as info:
        run_build(spec, tmp_path, examples, FakeRunner(version="1.1.0"))
    assert info.value.code == build.EXIT_VERSION_MISMATCH
    assert str(info.value).startswith(f"{target} holds an engine built with tensorrt_llm 1.0.0, but this container has 1.1.0")


IMAGE_A = "nvcr.io/nvidia/tritonserver:25.10-trtllm-python-py3"
IMAGE_B = "nvcr.io/nvidia/tritonserver:25.11-trtllm-python-py3"


def request_with_image(spec: EngineSpec, image: str) -> dict:
    return {**request_for(spec), "image": image, "engineKey": build.engine_key(spec.model_dump(mode="json"), image)}


def test_a_new_image_builds_beside_the_engine_still_serving(tmp_path, examples):
    spec = EngineSpec(model=L8)
    old = build.build(request_with_image(spec, IMAGE_A), tmp_path, FakeRunner(version="1.0.0"), str(examples))
    runner = FakeRunner(version="1.1.0")
    new = build.build(request_with_image(spec, IMAGE_B), tmp_path, runner, str(examples))
    assert old.parent == new.parent == tmp_path / "engines" / L8
    assert len({old.name, new.name, spec.content_hash()}) == 3
    assert runner.tools() == ["convert", "trtllm-build"]  # weights reused
    assert json.loads((old / "manifest.json").read_text())["tensorrtLlmVersion"] == "1.0.0"
    manifest = json.loads((new / "manifest.json").read_text())
    assert (manifest["image"], manifest["engineKey"], manifest["contentHash"]) == (IMAGE_B, new.name, spec.content_hash())


def test_engine_key_not_matching_spec_and_image_is_a_bad_request(tmp_path):
    spec = EngineSpec(model=L8)
    request = {**request_with_image(spec, IMAGE_A), "image": IMAGE_B}
    path = write_request(tmp_path / "spec.json", request)
    with pytest.raises(build.BuildError, match="engineKey .* does not match spec and image") as info:
        build.load_request(path)
    assert info.value.code == build.EXIT_BAD_REQUEST


def test_missing_converter_is_explained(tmp_path):
    with pytest.raises(build.BuildError, match="converter .*convert_checkpoint.py is missing: point --examples-dir"):
        run_build(EngineSpec(model=L8), tmp_path, tmp_path / "nowhere", FakeRunner())


def test_local_checkpoint_is_not_downloaded(tmp_path, examples):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "config.json").write_text("{}")
    request = {**request_for(EngineSpec(model=L8)), "checkpoint": str(weights)}
    runner = FakeRunner()
    build.build(request, tmp_path / "store", runner, str(examples))
    assert runner.tools() == ["convert", "trtllm-build"]
    assert runner.calls[0][runner.calls[0].index("--model_dir") + 1] == str(weights)


def write_request(path: Path, request: dict) -> Path:
    path.write_text(json.dumps(request))
    return path


def test_main_exit_codes(tmp_path, examples):
    spec = EngineSpec(model=L8)
    good = write_request(tmp_path / "spec.json", request_for(spec))
    args = ["--spec", str(good), "--store", str(tmp_path / "store"), "--examples-dir", str(examples)]
    assert build.main(args, runner=FakeRunner()) == build.EXIT_OK
    edited = request_for(spec)
    edited["spec"]["max_batch_size"] = 1
    bad = write_request(tmp_path / "edited.json", edited)
    assert build.main(["--spec", str(bad), "--store", str(tmp_path)], runner=FakeRunner()) == build.EXIT_BAD_REQUEST
    partial = write_request(tmp_path / "partial.json", {"spec": {"model": L8}, "architecture": "x", "checkpoint": "y"})
    assert build.main(["--spec", str(partial), "--store", str(tmp_path)], runner=FakeRunner()) == build.EXIT_BAD_REQUEST
    failing = FakeRunner(fail_on="convert")
    other = write_request(tmp_path / "other.json", request_for(EngineSpec(model=L8, tp_size=2)))
    code = build.main(["--spec", str(other), "--store", str(tmp_path / "store"), "--examples-dir", str(examples)], failing)
    assert code == build.EXIT_FAILED


FAKE_CONVERT = """\
import sys, pathlib
out = pathlib.Path(sys.argv[sys.argv.index("--output_dir") + 1])
(out / "config.json").write_text("{}")
"""
FAKE_TRTLLM_BUILD = """\
#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in --output_dir) out="$2";; --workers) n="$2";; esac; shift
done
mkdir -p "$out" && echo '{}' > "$out/config.json"
i=0; while [ $i -lt "$n" ]; do echo engine > "$out/rank$i.engine"; i=$((i+1)); done
echo "$out" >> "$(dirname "$0")/calls.log"
"""


def test_runs_from_a_configmap_copy_without_site_packages(tmp_path):
    """The three files the ConfigMap carries, under `python -S` (no pydantic), with real subprocesses."""
    code = tmp_path / "code" / "engines"
    code.mkdir(parents=True)
    for name in ("__init__.py", "build.py", "build_args.py"):
        shutil.copy(ENGINES / name, code / name)
    fakes = tmp_path / "fakes"
    (fakes / "tensorrt_llm").mkdir(parents=True)
    (fakes / "tensorrt_llm" / "__init__.py").write_text('__version__ = "1.0.0"\n')
    (fakes / "bin").mkdir()
    trtllm_build = fakes / "bin" / "trtllm-build"
    trtllm_build.write_text(FAKE_TRTLLM_BUILD)
    trtllm_build.chmod(0o755)
    examples = tmp_path / "examples" / "models/core/llama"
    examples.mkdir(parents=True)
    (examples / "convert_checkpoint.py").write_text(FAKE_CONVERT)
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "config.json").write_text("{}")
    spec = EngineSpec(model=L8, tp_size=2)
    request = write_request(tmp_path / "spec.json", {**request_for(spec), "checkpoint": str(weights)})
    command = [
        sys.executable, "-S", "-m", "engines.build", "--spec", str(request), "--store", str(tmp_path / "store"),
        "--examples-dir", str(tmp_path / "examples"),
    ]
    env = {
        "PATH": f"{fakes / 'bin'}:{os.environ['PATH']}",
        "PYTHONPATH": f"{code.parent}:{fakes}",
    }
    first = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    target = tmp_path / "store" / "engines" / L8 / spec.content_hash()
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["tensorrtLlmVersion"] == "1.0.0"
    assert sorted(f["path"] for f in manifest["files"]) == ["config.json", "rank0.engine", "rank1.engine", "tokenizer/config.json"]
    second = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert second.returncode == 0 and "up to date" in second.stdout
    assert len((fakes / "bin" / "calls.log").read_text().splitlines()) == 1

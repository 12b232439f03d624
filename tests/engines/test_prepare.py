"""The in-container model-preparation entrypoint, driven by a fake downloader (no network)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.config import ModelSourceConfig
from engines import prepare

REV = "0e9e39f249a16976918f6564b8830bc894c89659"
ENGINES = Path(prepare.__file__).parent


class FakeDownloader:
    """Writes what snapshot_download would: a config, a tokenizer and weights."""

    def __init__(self, fail: bool = False, config: bool = True):
        self.calls: list[tuple[str, str, Path, str | None]] = []
        self.fail = fail
        self.config = config

    def download(self, repository: str, revision: str, destination: Path, token: str | None) -> None:
        self.calls.append((repository, revision, destination, token))
        if self.fail:
            raise OSError("401 Client Error: gated repo")
        if self.config:
            (destination / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
        (destination / "tokenizer.json").write_text("{}")
        (destination / "model-00001-of-00001.safetensors").write_bytes(b"w" * 128)
        (destination / ".cache" / "huggingface").mkdir(parents=True)
        (destination / ".cache" / "huggingface" / "lock").write_text("")


def request(**overrides) -> dict:
    base = {
        "name": "llama-8b",
        "model": "llama-3.1-8b-instruct",
        "repository": "meta-llama/Llama-3.1-8B-Instruct",
        "revision": REV,
        "quantization": "none",
        "gated": True,
    }
    base.update(overrides)
    base["modelKey"] = prepare.model_key(base)
    return base


def test_model_key_is_stable_and_content_addressed() -> None:
    key = prepare.model_key({"repository": "meta-llama/Llama-3.1-8B-Instruct", "revision": REV, "quantization": "none"})
    assert len(key) == 16 and int(key, 16) >= 0
    assert key == prepare.model_key(request())  # extra keys do not matter
    assert key != prepare.model_key(request(revision="1" * 40))
    assert key != prepare.model_key(request(quantization="fp8"))
    assert key != prepare.model_key(request(repository="nvidia/Llama-3.1-8B-Instruct-FP8"))


def test_model_key_of_the_config_equals_the_entrypoint_s() -> None:
    source = ModelSourceConfig(model="llama-3.1-8b-instruct", revision=REV)
    assert source.key() == prepare.model_key(request())
    fp8 = ModelSourceConfig(model="llama-3.1-8b-instruct", quantization="fp8", revision=REV)
    assert fp8.repository == "nvidia/Llama-3.1-8B-Instruct-FP8"
    assert fp8.key() == prepare.model_key(request(repository=fp8.repository, quantization="fp8"))


def test_model_key_value_is_pinned() -> None:
    # a change of the hashing would move every prepared checkpoint to a new directory: keep it deliberate
    assert prepare.model_key(request()) == "33bdca77ed343719"


def test_prepares_once_into_the_content_addressed_directory(tmp_path: Path) -> None:
    downloader = FakeDownloader()
    target = prepare.prepare(request(), tmp_path, downloader, environ={"HF_TOKEN": "hf_x"})
    assert target == tmp_path / "models" / "llama-8b" / prepare.model_key(request())
    assert (target / ".complete").is_file()
    manifest = json.loads((target / "manifest.json").read_text())
    assert (manifest["repository"], manifest["revision"], manifest["quantization"]) == (
        "meta-llama/Llama-3.1-8B-Instruct", REV, "none",
    )
    assert manifest["files"] == [
        {"path": "config.json", "bytes": 39},
        {"path": "model-00001-of-00001.safetensors", "bytes": 128},
        {"path": "tokenizer.json", "bytes": 2},
    ]
    (repository, revision, destination, token) = downloader.calls[0]
    assert (repository, revision, token) == ("meta-llama/Llama-3.1-8B-Instruct", REV, "hf_x")
    assert destination.name.startswith(".partial-") and not destination.exists()
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_second_run_is_a_no_op(tmp_path: Path) -> None:
    prepare.prepare(request(), tmp_path, FakeDownloader(), environ={"HF_TOKEN": "t"})
    again = FakeDownloader()
    prepare.prepare(request(), tmp_path, again, environ={})  # no token needed: nothing downloaded
    assert again.calls == []


def test_a_truncated_file_triggers_a_new_download(tmp_path: Path) -> None:
    target = prepare.prepare(request(), tmp_path, FakeDownloader(), environ={"HF_TOKEN": "t"})
    (target / "model-00001-of-00001.safetensors").write_bytes(b"w")
    again = FakeDownloader()
    prepare.prepare(request(), tmp_path, again, environ={"HF_TOKEN": "t"})
    assert len(again.calls) == 1
    assert (target / "model-00001-of-00001.safetensors").stat().st_size == 128


def test_gated_model_without_token_fails_before_downloading(tmp_path: Path) -> None:
    downloader = FakeDownloader()
    with pytest.raises(prepare.PrepareError) as caught:
        prepare.prepare(request(), tmp_path, downloader, environ={})
    assert caught.value.code == prepare.EXIT_NO_TOKEN
    assert str(caught.value).startswith(
        "meta-llama/Llama-3.1-8B-Instruct is a gated model and no token is set (HF_TOKEN, or the file HF_TOKEN_PATH names)"
    )
    assert downloader.calls == [] and not (tmp_path / "models").exists()


def test_the_token_is_read_from_the_file_the_secret_is_mounted_as(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("hf_from_the_secret\n")
    downloader = FakeDownloader()
    prepare.prepare(request(), tmp_path / "store", downloader, environ={"HF_TOKEN_PATH": str(token_file)})
    assert [call[-1] for call in downloader.calls] == ["hf_from_the_secret"]
    assert prepare.hf_token({"HF_TOKEN_PATH": str(tmp_path / "missing")}) is None


def test_ungated_model_needs_no_token(tmp_path: Path) -> None:
    downloader = FakeDownloader()
    prepare.prepare(request(gated=False), tmp_path, downloader, environ={})
    assert downloader.calls[0][3] is None


def test_failed_download_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(prepare.PrepareError, match="download of meta-llama/Llama-3.1-8B-Instruct@.* failed: 401"):
        prepare.prepare(request(), tmp_path, FakeDownloader(fail=True), environ={"HF_TOKEN": "t"})
    assert list((tmp_path / "models" / "llama-8b").iterdir()) == []


def test_download_without_config_is_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(prepare.PrepareError, match="has no config.json"):
        prepare.prepare(request(), tmp_path, FakeDownloader(config=False), environ={"HF_TOKEN": "t"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"revision": "main"}, "revision 'main' in .* is not a 40-hex commit"),
        ({"quantization": "int4"}, "quantization 'int4' in .* is not one of none, fp8, nvfp4"),
        ({"name": "Llama_8B"}, "name 'Llama_8B' in .* is not a DNS label"),
    ],
)
def test_bad_requests_are_refused(tmp_path: Path, change: dict, message: str) -> None:
    path = tmp_path / "request.json"
    body = {**request(), **change}
    body.pop("modelKey")
    path.write_text(json.dumps(body))
    with pytest.raises(prepare.PrepareError, match=message) as caught:
        prepare.load_request(path)
    assert caught.value.code == prepare.EXIT_BAD_REQUEST


def test_edited_request_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps({**request(), "revision": "1" * 40}))
    with pytest.raises(prepare.PrepareError, match="does not match repository, revision and quantization"):
        prepare.load_request(path)


def test_main_returns_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request()))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert prepare.main(["--request", str(path), "--store", str(tmp_path)], FakeDownloader()) == 3
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    assert prepare.main(["--request", str(path), "--store", str(tmp_path)], FakeDownloader()) == 0


def test_entrypoint_runs_with_the_standard_library_only(tmp_path: Path) -> None:
    """As in the container: only engines/__init__.py and prepare.py on the path, no pydantic."""
    code = tmp_path / "code" / "engines"
    code.mkdir(parents=True)
    for name in ("__init__.py", "prepare.py"):
        (code / name).write_text((ENGINES / name).read_text())
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request(revision="main")))
    result = subprocess.run(
        [sys.executable, "-S", "-m", "engines.prepare", "--request", str(path), "--store", str(tmp_path)],
        cwd=tmp_path / "code", capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "is not a 40-hex commit" in result.stdout

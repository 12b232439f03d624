"""ModelSpec / ModelRepository: protobuf rendering, files, and wiring validation."""

from __future__ import annotations

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from components.serving.triton.model_repository import (
    EnsembleStep,
    ModelRepository,
    ModelSpec,
    Tensor,
    python_model_source,
    repository_files,
    write_repository,
)


def _parse(text: str) -> mc.ModelConfig:
    return text_format.Parse(text, mc.ModelConfig())


def _python_model(name: str, inputs, outputs) -> ModelSpec:
    return ModelSpec(
        name=name,
        backend="python",
        max_batch_size=4,
        inputs=inputs,
        outputs=outputs,
        instance_count=1,
        python_files={"model.py": "postprocessing.py"},
    )


A = Tensor(name="A", data_type="TYPE_INT32", dims=(-1,))
B = Tensor(name="B", data_type="TYPE_STRING", dims=(1,))


def test_config_pbtxt_parses_back_to_the_same_proto():
    spec = ModelSpec(
        name="m",
        backend="python",
        max_batch_size=4,
        inputs=(Tensor(name="x", data_type="TYPE_INT32", dims=(1,), reshape=(), optional=True),),
        outputs=(A,),
        decoupled=True,
        instance_count=2,
        parameters={"k": "v"},
        python_files={"model.py": "postprocessing.py"},
    )
    cfg = _parse(spec.config_pbtxt())
    assert cfg == spec.to_proto()
    assert cfg.model_transaction_policy.decoupled is True
    assert cfg.input[0].HasField("reshape") and list(cfg.input[0].reshape.shape) == []
    assert cfg.input[0].optional is True
    assert cfg.instance_group[0].count == 2
    assert cfg.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
    assert cfg.parameters["k"].string_value == "v"


def test_files_hold_config_and_packaged_model_py():
    spec = _python_model("post", (A,), (B,))
    files = spec.files()
    assert set(files) == {"post/config.pbtxt", "post/1/model.py"}
    assert files["post/1/model.py"] == python_model_source("postprocessing.py")
    assert "class TritonPythonModel" in files["post/1/model.py"]


def test_write_repository_matches_repository_files(tmp_path):
    repo = ModelRepository(tier="frontend", models=(_python_model("post", (A,), (B,)),))
    written = write_repository(repo, tmp_path)
    on_disk = {str(p.relative_to(tmp_path)): p.read_text() for p in written}
    assert on_disk == repository_files(repo)


def test_python_model_without_model_py_is_rejected():
    with pytest.raises(ValueError, match="must contain 'model.py'"):
        ModelSpec(name="p", backend="python", max_batch_size=1, inputs=(A,), outputs=(B,))


def test_backend_and_platform_are_exclusive():
    with pytest.raises(ValueError, match="exactly one of backend or platform"):
        ModelSpec(name="p", max_batch_size=1, inputs=(A,), outputs=(B,))


def _ensemble(steps, outputs=(B,)) -> ModelSpec:
    return ModelSpec(
        name="ens", platform="ensemble", max_batch_size=4, inputs=(A,), outputs=outputs, ensemble_steps=steps
    )


def test_ensemble_step_reading_unknown_tensor_is_rejected():
    with pytest.raises(ValueError, match="reads \\['_nowhere'\\]"):
        _ensemble((EnsembleStep(model_name="post", input_map={"A": "_nowhere"}, output_map={"B": "B"}),))


def test_ensemble_output_nobody_produces_is_rejected():
    with pytest.raises(ValueError, match="produced by no step"):
        _ensemble((EnsembleStep(model_name="post", input_map={"A": "A"}, output_map={"B": "_other"}),))


def test_ensemble_using_missing_model_is_rejected():
    ens = _ensemble((EnsembleStep(model_name="post", input_map={"A": "A"}, output_map={"B": "B"}),))
    with pytest.raises(ValueError, match="uses model 'post', which the repository does not contain"):
        ModelRepository(tier="frontend", models=(ens,))


def test_ensemble_type_mismatch_is_rejected():
    ens = _ensemble((EnsembleStep(model_name="post", input_map={"A": "A"}, output_map={"B": "B"}),))
    wrong = _python_model("post", (Tensor(name="A", data_type="TYPE_FP32", dims=(-1,)),), (B,))
    with pytest.raises(ValueError, match="is TYPE_INT32 but feeds 'A' of type TYPE_FP32"):
        ModelRepository(tier="frontend", models=(ens, wrong))


def test_ensemble_step_input_unknown_to_the_model_is_rejected():
    ens = _ensemble((EnsembleStep(model_name="post", input_map={"NOPE": "A"}, output_map={"B": "B"}),))
    with pytest.raises(ValueError, match="no input of model 'post' named 'NOPE'"):
        ModelRepository(tier="frontend", models=(ens, _python_model("post", (A,), (B,))))

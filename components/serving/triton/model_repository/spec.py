"""Typed description of a Triton model repository, rendered through Triton's own protobuf.

A :class:`ModelSpec` is one model directory (``<name>/config.pbtxt`` + ``<name>/1/...``); a
:class:`ModelRepository` is the set of models one Triton server loads. ``config.pbtxt`` text
is produced by building ``inference.ModelConfig`` (``tritonclient.grpc.model_config_pb2``) and
printing it with ``google.protobuf.text_format``, so every field name and enum value is checked
by the same schema Triton parses with.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from google.protobuf import text_format
from pydantic import BaseModel, ConfigDict, Field, model_validator
from tritonclient.grpc import model_config_pb2 as mc

DataType = Literal[
    "TYPE_BOOL",
    "TYPE_UINT8",
    "TYPE_INT32",
    "TYPE_INT64",
    "TYPE_UINT64",
    "TYPE_FP16",
    "TYPE_BF16",
    "TYPE_FP32",
    "TYPE_STRING",
]

Tier = Literal["frontend", "orchestrator"]

_PYTHON_MODELS = "components.serving.triton.model_repository.python_models"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Tensor(_Frozen):
    """One input or output tensor of a model (dims exclude the batch dimension)."""

    name: str
    data_type: DataType
    dims: tuple[int, ...]
    optional: bool = False
    reshape: tuple[int, ...] | None = Field(
        default=None, description="Shape the model sees (Triton `reshape`); None: no reshape."
    )
    allow_ragged_batch: bool = False


class DynamicBatching(_Frozen):
    """Triton dynamic batcher settings."""

    preferred_batch_size: tuple[int, ...] = ()
    max_queue_delay_microseconds: int = Field(default=0, ge=0)
    max_queue_size: int | None = Field(
        default=None, ge=1, description="Requests queued before rejecting; None: unbounded."
    )


class EnsembleStep(_Frozen):
    """One step of an ensemble: which model, and how its tensors map to ensemble tensors."""

    model_name: str
    input_map: dict[str, str] = Field(
        description="Step model's input name -> ensemble tensor (ensemble input or earlier output)."
    )
    output_map: dict[str, str] = Field(description="Step model's output name -> ensemble tensor it produces.")


class ModelSpec(_Frozen):
    """One model of a Triton model repository."""

    name: str
    backend: str | None = None
    platform: str | None = None
    max_batch_size: int = Field(ge=0)
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    decoupled: bool = False
    dynamic_batching: DynamicBatching | None = None
    instance_count: int | None = Field(
        default=None, ge=1, description="KIND_CPU instances; None: no instance_group (ensembles)."
    )
    parameters: dict[str, str] = Field(default_factory=dict)
    ensemble_steps: tuple[EnsembleStep, ...] = ()
    python_files: dict[str, str] = Field(
        default_factory=dict,
        description="Files of the version directory `1/`: file name -> package-data module "
        "in components.serving.triton.model_repository.python_models (e.g. {'model.py': 'preprocessing.py'}).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if (self.backend is None) == (self.platform is None):
            raise ValueError(f"model {self.name!r}: set exactly one of backend or platform")
        if self.platform == "ensemble":
            if not self.ensemble_steps:
                raise ValueError(f"ensemble {self.name!r}: needs at least one step")
            _check_ensemble_wiring(self)
        elif self.ensemble_steps:
            raise ValueError(f"model {self.name!r}: ensemble_steps only apply to platform ensemble")
        if self.backend == "python" and "model.py" not in self.python_files:
            raise ValueError(f"python model {self.name!r}: python_files must contain 'model.py'")
        names = [t.name for t in self.inputs]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"model {self.name!r}: duplicate inputs {sorted(dup)}")
        return self

    def input(self, name: str) -> Tensor:
        return _by_name(self.inputs, name, f"input of model {self.name!r}")

    def output(self, name: str) -> Tensor:
        return _by_name(self.outputs, name, f"output of model {self.name!r}")

    def to_proto(self) -> mc.ModelConfig:
        """The model as Triton's ``inference.ModelConfig`` message."""
        cfg = mc.ModelConfig(name=self.name, max_batch_size=self.max_batch_size)
        if self.backend is not None:
            cfg.backend = self.backend
        if self.platform is not None:
            cfg.platform = self.platform
        for t in self.inputs:
            i = cfg.input.add(
                name=t.name,
                data_type=mc.DataType.Value(t.data_type),
                dims=list(t.dims),
                optional=t.optional,
                allow_ragged_batch=t.allow_ragged_batch,
            )
            if t.reshape is not None:
                i.reshape.SetInParent()
                i.reshape.shape.extend(t.reshape)
        for t in self.outputs:
            o = cfg.output.add(name=t.name, data_type=mc.DataType.Value(t.data_type), dims=list(t.dims))
            if t.reshape is not None:
                o.reshape.SetInParent()
                o.reshape.shape.extend(t.reshape)
        if self.decoupled:
            cfg.model_transaction_policy.decoupled = True
        if self.dynamic_batching is not None:
            db = cfg.dynamic_batching
            db.SetInParent()
            db.preferred_batch_size.extend(self.dynamic_batching.preferred_batch_size)
            db.max_queue_delay_microseconds = self.dynamic_batching.max_queue_delay_microseconds
            if self.dynamic_batching.max_queue_size is not None:
                db.default_queue_policy.max_queue_size = self.dynamic_batching.max_queue_size
        if self.instance_count is not None:
            cfg.instance_group.add(count=self.instance_count, kind=mc.ModelInstanceGroup.KIND_CPU)
        for key, value in self.parameters.items():
            cfg.parameters[key].string_value = value
        for step in self.ensemble_steps:
            s = cfg.ensemble_scheduling.step.add(model_name=step.model_name, model_version=-1)
            for k, v in step.input_map.items():
                s.input_map[k] = v
            for k, v in step.output_map.items():
                s.output_map[k] = v
        return cfg

    def config_pbtxt(self) -> str:
        """``config.pbtxt`` text: the protobuf text format of :meth:`to_proto`."""
        return text_format.MessageToString(self.to_proto())

    def files(self) -> dict[str, str]:
        """This model's files, relative to the repository root."""
        out = {f"{self.name}/config.pbtxt": self.config_pbtxt()}
        for target, source in self.python_files.items():
            out[f"{self.name}/1/{target}"] = python_model_source(source)
        return out


class ModelRepository(_Frozen):
    """The models one Triton server loads (one directory passed as ``--model-repository``)."""

    tier: Tier
    models: tuple[ModelSpec, ...]

    @model_validator(mode="after")
    def _ensembles_match_models(self) -> ModelRepository:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.tier} repository: duplicate model names {names}")
        by_name = {m.name: m for m in self.models}
        for ens in (m for m in self.models if m.platform == "ensemble"):
            for step in ens.ensemble_steps:
                target = by_name.get(step.model_name)
                if target is None:
                    raise ValueError(
                        f"{self.tier} repository: ensemble {ens.name!r} uses model "
                        f"{step.model_name!r}, which the repository does not contain: add it "
                        f"or remove the step"
                    )
                for k, v in step.input_map.items():
                    _same_type(target.input(k), _ensemble_tensor(ens, by_name, v), ens.name)
                for k, v in step.output_map.items():
                    produced = target.output(k)
                    if any(o.name == v for o in ens.outputs):
                        _same_type(produced, ens.output(v), ens.name)
        return self

    def model(self, name: str) -> ModelSpec:
        return _by_name(self.models, name, f"model of the {self.tier} repository")

    def files(self) -> dict[str, str]:
        """``{relative_path: file_text}`` for every file of the repository."""
        out: dict[str, str] = {}
        for m in self.models:
            out.update(m.files())
        return out


def python_model_source(module_file: str) -> str:
    """Text of a package-data python model file (e.g. ``'preprocessing.py'``)."""
    return resources.files(_PYTHON_MODELS).joinpath(module_file).read_text(encoding="utf-8")


def repository_files(repository: ModelRepository) -> dict[str, str]:
    """``{relative_path: file_text}`` of a repository (e.g. for Kubernetes ConfigMaps).

    Paths look like ``preprocessing/config.pbtxt`` and ``preprocessing/1/model.py``.
    """
    return repository.files()


def write_repository(repository: ModelRepository, directory: Path) -> list[Path]:
    """Write the repository under ``directory`` (created if missing); returns the files written.

    Model directories already in ``directory`` that the repository does not contain are left
    alone; use an empty directory to get exactly this repository.
    """
    directory = Path(directory)
    written = []
    for rel, text in repository.files().items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    for m in repository.models:  # Triton needs the version directory even for ensembles.
        (directory / m.name / "1").mkdir(parents=True, exist_ok=True)
    return written


def _by_name(items, name: str, what: str):
    for item in items:
        if item.name == name:
            return item
    raise ValueError(f"no {what} named {name!r}; known: {[i.name for i in items]}")


def _ensemble_tensor(ens: ModelSpec, by_name: dict[str, ModelSpec], tensor: str) -> Tensor:
    """The ensemble input, or the step output (typed by its producing model), called ``tensor``."""
    for t in ens.inputs:
        if t.name == tensor:
            return t
    for step in ens.ensemble_steps:
        for k, v in step.output_map.items():
            if v == tensor:
                return by_name[step.model_name].output(k)
    raise ValueError(f"ensemble {ens.name!r}: tensor {tensor!r} is neither input nor step output")


def _same_type(consumer: Tensor, producer: Tensor, ensemble: str) -> None:
    if consumer.data_type != producer.data_type:
        raise ValueError(
            f"ensemble {ensemble!r}: {producer.name!r} is {producer.data_type} but feeds "
            f"{consumer.name!r} of type {consumer.data_type}: make the types agree"
        )


def _check_ensemble_wiring(ens: ModelSpec) -> None:
    """Every step input is an ensemble input or an earlier step's output; every output produced."""
    available = {t.name for t in ens.inputs}
    for step in ens.ensemble_steps:
        missing = [v for v in step.input_map.values() if v not in available]
        if missing:
            raise ValueError(
                f"ensemble {ens.name!r}: step {step.model_name!r} reads {missing}, which no "
                f"ensemble input or earlier step provides"
            )
        available.update(step.output_map.values())
    unproduced = [t.name for t in ens.outputs if t.name not in available]
    if unproduced:
        raise ValueError(f"ensemble {ens.name!r}: outputs {unproduced} are produced by no step")

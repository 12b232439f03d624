"""StackSecrets: config secrets and generated SSH keys become the Secrets the pods mount, with no
hand step, masked in every recorded input; an existing Secret stays usable by leaving the value out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.config import ConfigError, load_stack_config
from components.config.stack import StackConfig
from components.serving.mpi_ssh import SECRET_KEYS
from components.serving.secrets import PlannedSecret, StackSecrets, config_values, planned_secrets
from disaggctl.synth.fast_registration import install_fast_mocks as install_mocks
from disaggctl.synth.program import SECRET_PLACEHOLDER, mask_secret_inputs, read_stack_config

PROJECT_DIR = Path(__file__).resolve().parents[3]
HF = "hf_TESTTOKENabcdefghijklmnopqrstuvwx"
API = "client-key-7d1c0b9e2f3a4c5d6e7f8091a2b3c4d5"
ADMIN = "admin-key-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
SECRET_KEYS_OF = ["disagg:hfToken", "disagg:apiKeys", "disagg:tritonAdminKey"]


def raw_config(*, public: bool = False, **values: object) -> dict[str, str]:
    _, raw, _ = read_stack_config(PROJECT_DIR, "dev")
    deployments = json.loads(raw["disagg:deployments"])
    if public:
        deployments[0]["frontend"]["internalLoadBalancer"] = False
        raw["disagg:platform"] = json.dumps({"security": {"publicFrontends": {"llama-8b": {
            "sourceRanges": ["52.94.0.0/22"], "auth": {"key": {"secretName": "llama-api-key", "secretKey": "key"}},
        }}}})  # fmt: skip
    raw["disagg:deployments"] = json.dumps(deployments)
    for key, value in values.items():
        raw[f"disagg:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return raw


def load(raw: dict[str, str], secret: bool = True, multi_node: bool = False) -> StackConfig:
    config = load_stack_config(raw, SECRET_KEYS_OF if secret else [])
    if not multi_node:
        return config
    # dev's tp-2 groups spread over two pods of one GPU (a layout whose capacity dev's pool does
    # not have: only which Secrets a multi-node group needs matters here)
    deployment = config.deployments[0]
    assert deployment.workers is not None
    workers = deployment.workers.model_copy(update={"pods_per_group": 2, "gpus_per_pod": 1})
    return config.model_copy(update={"deployments": [deployment.model_copy(update={"workers": workers})]})


def test_nothing_is_created_when_nothing_is_configured() -> None:
    """dev as committed: hf-token is read from an existing Secret (the path for External Secrets)."""
    assert planned_secrets(load(raw_config())) == []


def test_each_configured_secret_becomes_one_planned_secret() -> None:
    config = load(raw_config(public=True, hfToken=HF, apiKeys={"llama-8b": API}), multi_node=True)
    assert planned_secrets(config) == [
        PlannedSecret("hf-token", ("HF_TOKEN",), "hfToken"),
        PlannedSecret("llama-api-key", ("key",), "apiKeys", "llama-8b"),
        PlannedSecret("llama-8b-mpi-ssh", SECRET_KEYS, "generated", "llama-8b"),
    ]


def test_multi_node_keys_can_come_from_an_existing_secret() -> None:
    config = load(raw_config(mpiSshKeys="existing"), multi_node=True)
    assert planned_secrets(config) == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"hfToken": HF}, "disagg:hfToken: the value is in the stack file in plain text (value hidden): remove it, "
         "rotate the credential, and store it encrypted: pulumi config set --secret hfToken <value>"),
        ({"apiKeys": {"llama-8b": API}}, "disagg:apiKeys: the value is in the stack file in plain text (value "
         "hidden): remove it, rotate the credential, and store it encrypted: pulumi config set --secret --path "
         "'apiKeys.<deployment>' <key>"),
    ],
)  # fmt: skip
def test_a_plain_text_secret_is_refused_with_one_line_that_hides_it(values, expected) -> None:
    with pytest.raises(ConfigError) as caught:
        load(raw_config(public=True, **values), secret=False)
    assert caught.value.problems == [expected]
    assert HF not in str(caught.value) and API not in str(caught.value)


def test_an_api_key_for_a_deployment_without_a_public_frontend_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load(raw_config(apiKeys={"llama-8b": API}))
    assert caught.value.problems == [
        "disagg:apiKeys.llama-8b: 'llama-8b' has no publicFrontends entry (its auth.key names the Secret to "
        "create): add the entry or drop the key"
    ]


def unwrap(value):
    from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret

    assert is_rpc_secret(value)
    return unwrap_rpc_secret(value)


def declare(config: StackConfig):
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    monitor = install_mocks("disagg", "test")
    _sync_await(run_pulumi_func(lambda: StackSecrets(
        "llm-dev-secrets", planned_secrets(config), config_values(config), "llm-dev"
    )))  # fmt: skip
    return list(monitor.recorded.values())


def test_the_secrets_are_declared_with_every_value_masked() -> None:
    config = load(raw_config(public=True, hfToken=HF, apiKeys={"llama-8b": API}), multi_node=True)
    resources = declare(config)
    secrets = {r.inputs["metadata"]["name"]: r for r in resources if r.type == "kubernetes:core/v1:Secret"}
    assert sorted(secrets) == ["hf-token", "llama-8b-mpi-ssh", "llama-api-key"]
    # what the engine receives: the real values, as secrets (the provider SDK marks stringData)
    data = {name: unwrap(r.inputs["stringData"]) for name, r in secrets.items()}
    assert data["hf-token"] == {"HF_TOKEN": HF}
    assert data["llama-api-key"] == {"key": API}
    assert sorted(data["llama-8b-mpi-ssh"]) == sorted(SECRET_KEYS)
    assert data["llama-8b-mpi-ssh"]["id_ed25519.pub"].startswith("ssh-ed25519 ")
    # what synth writes: nothing of them
    masked = {name: mask_secret_inputs(r.inputs) for name, r in secrets.items()}
    assert {name: m["stringData"] for name, m in masked.items()} == dict.fromkeys(secrets, SECRET_PLACEHOLDER)
    assert masked["hf-token"]["metadata"]["namespace"] == "llm-dev"
    text = json.dumps(masked)
    assert HF not in text and API not in text and "PRIVATE KEY" not in text


def test_the_mpi_keys_are_two_generated_ed25519_keys() -> None:
    resources = declare(load(raw_config(), multi_node=True))
    keys = sorted((r.name, r.inputs) for r in resources if r.type == "tls:index/privateKey:PrivateKey")
    assert keys == [
        ("llm-dev-secrets-llama-8b-mpi-ssh-client", {"algorithm": "ED25519"}),
        ("llm-dev-secrets-llama-8b-mpi-ssh-host", {"algorithm": "ED25519"}),
    ]


def test_two_settings_naming_one_secret_are_refused_before_anything_is_declared() -> None:
    raw = raw_config(public=True, hfToken=HF, apiKeys={"llama-8b": API})
    platform = json.loads(raw["disagg:platform"])
    platform["security"]["publicFrontends"]["llama-8b"]["auth"]["key"]["secretName"] = "hf-token"
    raw["disagg:platform"] = json.dumps(platform)
    with pytest.raises(ConfigError) as caught:
        load(raw)
    assert caught.value.problems == [
        "disagg:hfToken and apiKeys.llama-8b: both would create the Secret 'hf-token': give each its own secretName"
    ]

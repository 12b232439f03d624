"""StackSecrets: the Kubernetes Secrets the pods read, made by the program — no hand steps.

===================================  ==========================================  =============================
Secret (data keys)                   from                                        read by
===================================  ==========================================  =============================
``hfTokenSecret`` (HF_TOKEN)         ``hfToken`` (Pulumi config secret)          model-preparation/build Jobs
public frontend ``auth.key``         ``apiKeys.<deployment>`` (config secret)    the deployment's frontend
``tritonRestrictedApis.key``         ``tritonAdminKey`` (config secret)          every Triton (engine runtime)
``<deployment>-mpi-ssh``             two ED25519 ``tls.PrivateKey`` (pulumi-tls)  multi-node worker groups
===================================  ==========================================  =============================

A value not configured means "the Secret exists already": made outside the stack (``kubectl``, or
External Secrets syncing AWS Secrets Manager into a Secret of that name), as before. Every value is
a Pulumi secret (config secrets are; the generated keys are wrapped with ``Output.secret``, since
the provider's own ``additionalSecretOutputs`` are applied by the engine, not in a program), so the
Secret's ``stringData`` is encrypted in the state and masked by ``disaggctl synth``. The generated
keys live only in the stack's encrypted state: ``pulumi destroy`` or removing the deployment drops
them; a rotation is ``pulumi up --replace <urn of the tls.PrivateKey>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components.config.security import mpi_ssh_secret_name
from components.config.stack import StackConfig
from components.serving.labels import PART_OF
from components.serving.mpi_ssh import SECRET_KEYS

TYPE_TOKEN = "disagg:serving:StackSecrets"
HF_TOKEN_KEY = "HF_TOKEN"
"""Data key of the Hugging Face token Secret (``components.models.engine_build`` reads it)."""
SSH_ALGORITHM = "ED25519"
"""The key type :mod:`.mpi_ssh` expects (``id_ed25519``, ``ssh_host_ed25519_key``)."""

Source = Literal["hfToken", "apiKeys", "tritonAdminKey", "generated"]


@dataclass(frozen=True)
class PlannedSecret:
    """One Secret the stack creates: its name, data key(s) and where the value comes from."""

    name: str
    keys: tuple[str, ...]
    source: Source
    deployment: str | None = None


def multi_node_deployments(config: StackConfig) -> list[str]:
    """Deployments with at least one worker group spanning several pods (mpirun over ssh)."""
    return [
        d.name for d in config.deployments if any(g.pods_per_group > 1 for g in d.worker_groups().values())
    ]


def planned_secrets(config: StackConfig) -> list[PlannedSecret]:
    """The Secrets the stack creates for ``config``, in a stable order."""
    planned: list[PlannedSecret] = []
    if config.hf_token is not None and config.hf_token_secret is not None:
        planned.append(PlannedSecret(config.hf_token_secret, (HF_TOKEN_KEY,), "hfToken"))
    public = config.platform.security.public_frontends
    for deployment in sorted(config.api_keys):
        key = public[deployment].auth.key
        planned.append(PlannedSecret(key.secret_name, (key.secret_key,), "apiKeys", deployment))
    restricted = config.platform.security.triton_restricted_apis
    if config.triton_admin_key is not None and restricted.enabled:
        planned.append(PlannedSecret(restricted.key.secret_name, (restricted.key.secret_key,), "tritonAdminKey"))
    if config.mpi_ssh_keys == "generate":
        for deployment in multi_node_deployments(config):
            planned.append(PlannedSecret(mpi_ssh_secret_name(deployment), SECRET_KEYS, "generated", deployment))
    names = [p.name for p in planned]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"Secret name(s) {', '.join(duplicates)} would be created twice (two settings name the same "
            "Secret): give each its own secretName"
        )
    return planned


def ssh_key_data(client: tls.PrivateKey, host: tls.PrivateKey) -> dict[str, pulumi.Output[str]]:
    """The ``<deployment>-mpi-ssh`` data (:data:`.mpi_ssh.SECRET_KEYS`), every value secret."""
    return {
        "id_ed25519": pulumi.Output.secret(client.private_key_openssh),
        "id_ed25519.pub": pulumi.Output.secret(client.public_key_openssh),
        "ssh_host_ed25519_key": pulumi.Output.secret(host.private_key_openssh),
        "ssh_host_ed25519_key.pub": pulumi.Output.secret(host.public_key_openssh),
    }


def config_values(config: StackConfig) -> dict[str, str]:
    """Secret name -> its configured value (every planned Secret but the generated ones)."""
    values: dict[str, str] = {}
    for planned in planned_secrets(config):
        if planned.source == "hfToken" and config.hf_token is not None:
            values[planned.name] = config.hf_token
        elif planned.source == "apiKeys":
            values[planned.name] = config.api_keys[planned.deployment or ""]
        elif planned.source == "tritonAdminKey" and config.triton_admin_key is not None:
            values[planned.name] = config.triton_admin_key
    return values


class StackSecrets(pulumi.ComponentResource):
    """The ``secrets`` (:func:`planned_secrets` for a stack) in ``namespace``: generated ones from
    pulumi-tls keys, the others from ``values`` (Secret name -> value, made secret here)."""

    secrets: dict[str, k8s.core.v1.Secret]
    """By Secret name: for ``depends_on`` of the pods that mount them."""

    def __init__(
        self,
        name: str,
        secrets: Sequence[PlannedSecret],
        values: Mapping[str, pulumi.Input[str]],
        namespace: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.secrets = {}
        child = pulumi.ResourceOptions(parent=self)
        for planned in secrets:
            data: dict[str, pulumi.Output[str]]
            if planned.source == "generated":
                client = tls.PrivateKey(f"{name}-{planned.name}-client", algorithm=SSH_ALGORITHM, opts=child)
                host = tls.PrivateKey(f"{name}-{planned.name}-host", algorithm=SSH_ALGORITHM, opts=child)
                data = ssh_key_data(client, host)
            else:
                if planned.name not in values:
                    raise ValueError(f"Secret '{planned.name}' ({planned.source}) has no value: configure it")
                data = {planned.keys[0]: pulumi.Output.secret(values[planned.name])}
            labels = {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi"}
            if planned.deployment:
                labels["app.kubernetes.io/instance"] = planned.deployment
            self.secrets[planned.name] = k8s.core.v1.Secret(
                f"{name}-{planned.name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=planned.name, namespace=namespace, labels=labels),
                type="Opaque",
                string_data=data,
                opts=child,
            )
        self.register_outputs({"secrets": sorted(self.secrets)})

"""What the download/build Jobs share: the Hugging Face token as a file, the restricted pod
security, and their NetworkPolicy (DNS and HTTPS egress only).

The token is never an environment variable: the Secret's key is mounted read-only as
``HF_TOKEN_PATH`` (huggingface_hub reads the token from that file when ``HF_TOKEN`` is unset:
huggingface/huggingface_hub ``src/huggingface_hub/constants.py`` ``HF_TOKEN_PATH``), so it is not
in ``/proc/<pid>/environ`` of every process the Job starts nor in ``kubectl describe``.
"""

from __future__ import annotations

from typing import Any

HF_TOKEN_DIR = "/var/run/secrets/huggingface"
HF_TOKEN_FILE = "token"
HF_TOKEN_PATH = f"{HF_TOKEN_DIR}/{HF_TOKEN_FILE}"
RUN_AS = 1000
"""uid/gid of the Jobs' processes (the first user of the Ubuntu-based NGC images)."""
METADATA_RANGE = "169.254.0.0/16"
"""Link-local (instance metadata, IMDS): never an HTTPS destination of a Job."""
DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}


def hashed_job_name(component: str, name: str, key: str) -> str:
    """Kubernetes name of a content-addressed Job (and its ConfigMap): ``<name>-<key>``, so a
    changed input runs a new Job; ValueError naming ``component`` when it exceeds 63 characters."""
    full = f"{name}-{key}"
    if len(full) > 63:
        raise ValueError(
            f"{component} name '{name}' is {len(name)} characters; with the {len(key) + 1}-character hash "
            f"suffix the Job name exceeds 63: use a name of at most {62 - len(key)} characters"
        )
    return full


def hf_token_env() -> dict[str, str]:
    """``HF_TOKEN_PATH``: where huggingface_hub (and engines.prepare) read the token."""
    return {"HF_TOKEN_PATH": HF_TOKEN_PATH}


def hf_token_volume(secret_name: str, secret_key: str) -> dict[str, Any]:
    """The Secret's ``secret_key`` as the file ``token`` (0440: owner and fsGroup read only)."""
    return {
        "name": "hf-token",
        "secret": {
            "secretName": secret_name,
            "items": [{"key": secret_key, "path": HF_TOKEN_FILE}],
            "defaultMode": 0o440,
        },
    }


def hf_token_mount() -> dict[str, Any]:
    return {"name": "hf-token", "mountPath": HF_TOKEN_DIR, "readOnly": True}


def restricted_pod_security_context() -> dict[str, Any]:
    """Pod securityContext of the "restricted" Pod Security Standard (non-root, RuntimeDefault)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_security_context() -> dict[str, Any]:
    """Container securityContext: no escalation, every capability dropped, read-only root."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }


def job_network_policy(name: str, namespace: str, pod_labels: dict[str, str]) -> dict[str, Any]:
    """NetworkPolicy of a Job's pods: nothing in; out only DNS (kube-dns) and HTTPS (443) to
    addresses outside the link-local range (Hugging Face, NGC). The shared store is mounted by
    the node's CSI driver, so the pod needs no Lustre egress."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(pod_labels)},
        "spec": {
            "podSelector": {"matchLabels": dict(pod_labels)},
            "policyTypes": ["Ingress", "Egress"],
            "egress": [
                {"to": [DNS_PEER], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [METADATA_RANGE]}}],
                    "ports": [{"protocol": "TCP", "port": 443}],
                },
            ],
        },
    }

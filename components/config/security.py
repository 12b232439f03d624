"""Security policy of a stack (``disagg:platform.security``): what is refused unless opted into.

* Images must be pinned: mutable tags (``latest``, ``main``, …) are refused unless
  ``allowMutableImageTags`` is true (for throwaway dev stacks only).
* A frontend is exposed to the internet only when ``publicFrontends.<deployment>`` says so, with
  the source ranges allowed and an authentication mechanism; everything else stays internal.
* Triton's administrative APIs (model repository, shared memory, trace, logging, statistics)
  need a key from a Secret (``tritonRestrictedApis``); health and inference stay open to the
  pods that may reach the Service.

The serving components render these from :func:`triton_restricted_api_args` and
:class:`PublicFrontendConfig`; this module holds no resources.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator

from components.config.base import ConfigModel

TritonApi = Literal[
    "health", "metadata", "inference", "shared-memory", "model-config", "model-repository", "statistics",
    "trace", "logging",
]
"""APIs (HTTP) / protocols (gRPC) Triton can restrict. Source: triton-inference-server/server
docs/customization_guide/inference_protocols.md, "Limit endpoint access" (``--http-restricted-api``,
``--grpc-restricted-protocol``)."""

ADMIN_APIS: tuple[TritonApi, ...] = ("model-repository", "shared-memory", "trace", "logging", "statistics")
"""Restricted by default: nothing in this project calls them, and each lets a client change or read
server state (load/unload models, register shared memory, turn on tracing/logging)."""

_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_HEADER = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")


def secret_name_problem(name: str, key: str) -> str | None:
    """Why ``name`` cannot name a Kubernetes Secret (DNS-1123 subdomain), or None. Never echoes a
    value that looks like a token rather than a name."""
    if looks_like_token(name):
        return (
            f"{key}: the value looks like a token or password (value hidden), but this key takes "
            "the NAME of a Kubernetes Secret holding it: rotate the credential (it is in the stack "
            "file now), store it with kubectl create secret generic <name> --from-literal=…, and "
            "put <name> here"
        )
    if len(name) > 253 or not _SECRET_NAME.match(name) or ".." in name:
        return (
            f"{key}: '{name}' is not a Kubernetes Secret name (lowercase letters, digits, '-' and "
            "'.', at most 253 characters, starting and ending with a letter or digit): rename it"
        )
    return None


_TOKEN_PREFIXES = ("hf_", "api_", "ghp_", "github_pat_", "sk-", "xoxb-", "AKIA", "ASIA", "eyJ")


def looks_like_token(value: str) -> bool:
    """Whether ``value`` looks like a credential (a known token prefix, or a long mixed-case or
    digit-and-letter string no one would choose as a name)."""
    if value.startswith(_TOKEN_PREFIXES) and len(value) >= 16:
        return True
    if len(value) >= 32 and re.fullmatch(r"[A-Za-z0-9_+/=-]+", value):
        has_upper = any(c.isupper() for c in value)
        has_digit = sum(c.isdigit() for c in value) >= 4
        return has_upper or (has_digit and "-" not in value)
    return False


class SecretRefConfig(ConfigModel):
    """A key of a Kubernetes Secret in the serving namespace (created outside the stack)."""

    secret_name: str
    secret_key: str = "key"

    @field_validator("secret_name")
    @classmethod
    def _name(cls, name: str) -> str:
        problem = secret_name_problem(name, "secretName")
        if problem:
            raise ValueError(problem.removeprefix("secretName: "))
        return name

    @field_validator("secret_key")
    @classmethod
    def _key(cls, key: str) -> str:
        if not _SECRET_KEY.match(key):
            raise ValueError(f"secretKey '{key}' is not a Secret data key (letters, digits, '-', '_', '.'): rename it")
        return key


class FrontendAuthConfig(ConfigModel):
    """How clients of a public frontend authenticate: a shared key in a request header, checked by
    Triton (``--http-restricted-api`` / ``--grpc-restricted-protocol`` on inference)."""

    kind: Literal["api-key"] = "api-key"
    header: str = "x-api-key"
    """Header (HTTP) / metadata key (gRPC) carrying the key; lowercase."""
    key: SecretRefConfig

    @field_validator("header")
    @classmethod
    def _header(cls, header: str) -> str:
        if not _HEADER.match(header):
            raise ValueError(f"header '{header}' must be a lowercase HTTP header name such as x-api-key: fix it")
        return header


class PublicFrontendConfig(ConfigModel):
    """Opt-in: expose one deployment's frontend on an internet-facing load balancer."""

    source_ranges: list[str] = Field(min_length=1, max_length=60)
    """Client CIDRs allowed (loadBalancerSourceRanges); 0.0.0.0/0 is refused: list your clients."""
    auth: FrontendAuthConfig

    @field_validator("source_ranges")
    @classmethod
    def _ranges(cls, ranges: list[str]) -> list[str]:
        for cidr in ranges:
            problem = public_cidr_problem(cidr)
            if problem:
                raise ValueError(f"sourceRanges: {problem}")
        return ranges


class TritonRestrictedApisConfig(ConfigModel):
    """Triton's administrative APIs behind a key (on every Triton of the stack)."""

    enabled: bool = True
    apis: list[TritonApi] = list(ADMIN_APIS)
    header: str = "x-triton-admin-key"
    key: SecretRefConfig = SecretRefConfig(secret_name="triton-admin-key")

    @field_validator("apis")
    @classmethod
    def _apis(cls, apis: list[TritonApi]) -> list[TritonApi]:
        if "health" in apis:
            raise ValueError("apis: 'health' cannot be restricted (the kubelet's probes call it): remove it")
        if len(set(apis)) != len(apis):
            raise ValueError("apis: an API is listed twice (Triton refuses it): remove the duplicate")
        return apis

    @field_validator("header")
    @classmethod
    def _header(cls, header: str) -> str:
        if not _HEADER.match(header):
            raise ValueError(f"header '{header}' must be a lowercase HTTP header name: fix it")
        return header


class SecurityConfig(ConfigModel):
    """What the stack refuses unless opted into; the defaults are the secure ones."""

    allow_mutable_image_tags: bool = False
    """Accept image tags such as ``latest`` or ``main`` that move (never in production)."""
    public_frontends: dict[str, PublicFrontendConfig] = {}
    """Deployment name -> its internet exposure. A deployment not listed stays internal."""
    triton_restricted_apis: TritonRestrictedApisConfig = TritonRestrictedApisConfig()


_NOT_ROUTED = tuple(
    ipaddress.IPv4Network(block)
    for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16")
)
"""Private (RFC 1918), shared (RFC 6598), loopback and link-local ranges: no internet source has them."""


DOCUMENTATION_RANGES = tuple(
    ipaddress.IPv4Network(block) for block in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)
"""TEST-NET-1/2/3 (RFC 5737): reserved for examples in documentation; no client has them."""
DEPLOYER_CIDR_PLACEHOLDER = "DEPLOYER-CIDR"
"""What the shipped stacks hold in ``publicAccessCidrs`` until the user puts the egress CIDR of the
machine running ``pulumi up`` there: the offline synth renders it with a warning, ``pulumi up``
refuses it (:func:`components.config.loader.load_from_pulumi`)."""


def public_cidr_problem(cidr: str) -> str | None:
    """Why ``cidr`` cannot be an allowed source of a public endpoint, or None."""
    try:
        network = ipaddress.ip_network(cidr, strict=True)
    except ValueError:
        return f"'{cidr}' is not an IPv4 CIDR such as 52.94.0.0/22 (address bits beyond the prefix must be 0): fix it"
    if network.prefixlen == 0:
        return f"'{cidr}' opens the endpoint to the whole internet: list the client networks instead"
    if network.version != 4:
        return f"'{cidr}' is IPv6; only IPv4 ranges are supported here: use the IPv4 ranges of your clients"
    if any(network.subnet_of(block) for block in DOCUMENTATION_RANGES):
        return (
            f"'{cidr}' is a documentation range (RFC 5737), which no client has: put the egress "
            "CIDRs of the clients (or of the machine running pulumi up) here"
        )
    if any(network.subnet_of(block) for block in _NOT_ROUTED) or network.is_multicast:
        return (
            f"'{cidr}' is a private or reserved range, which never reaches a public endpoint: list "
            "public client ranges (private clients use the private endpoint)"
        )
    return None


def triton_restricted_api_args(config: TritonRestrictedApisConfig, env_var: str = "TRITON_ADMIN_KEY") -> list[str]:
    """``tritonserver`` arguments restricting ``config.apis`` to requests carrying the key.

    The key is never in the pod spec: it is ``$(env_var)``, which the kubelet expands from the
    container's environment, itself set from the Secret (``env[].valueFrom.secretKeyRef`` =
    ``config.key``). Returns [] when disabled.
    """
    if not config.enabled or not config.apis:
        return []
    apis = ",".join(config.apis)
    pair = f"{config.header}=$({env_var})"
    return [f"--http-restricted-api={apis}:{pair}", f"--grpc-restricted-protocol={apis}:{pair}"]


def frontend_auth_args(auth: FrontendAuthConfig, env_var: str = "FRONTEND_API_KEY") -> list[str]:
    """``tritonserver`` arguments requiring the client key on inference and metadata (public frontends)."""
    pair = f"{auth.header}=$({env_var})"
    return [f"--http-restricted-api=inference,metadata:{pair}", f"--grpc-restricted-protocol=inference,metadata:{pair}"]

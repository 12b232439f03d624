"""The kubeconfig of an existing cluster: its text or the file it names, and the context in it.

Read while the configuration is validated (so ``pulumi preview`` fails before anything is declared) and
again by ``components.cluster.existing`` to build the provider.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from components.config.base import OFFLINE_SECRET

KUBECONFIG_KEY = "disagg:cluster.existing.kubeconfig"


CONTEXT_KEY = "disagg:cluster.existing.context"


def is_kubeconfig_text(value: str) -> bool:
    """Whether ``value`` is kubeconfig content (YAML or JSON) rather than a path to it."""
    stripped = value.strip()
    return "\n" in stripped or stripped.startswith("{") or stripped.startswith("apiVersion:")


def read_kubeconfig(value: str) -> str:
    """The kubeconfig text: ``value`` itself, or the file it names (``~`` expanded).

    A missing or unreadable file is an error naming the config key, read at plan time so that
    ``pulumi preview`` fails before anything is deployed. An offline synth cannot decrypt a secret
    kubeconfig: ``OFFLINE_SECRET`` passes through unread (the mocked provider never connects).
    """
    if is_kubeconfig_text(value) or value == OFFLINE_SECRET:
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise ValueError(
            f"{KUBECONFIG_KEY}: '{value}' is neither kubeconfig text nor an existing file: "
            "fix the path, or set the key to the kubeconfig content itself (as a secret)"
        )
    try:
        return path.read_text()
    except OSError as err:
        raise ValueError(f"{KUBECONFIG_KEY}: cannot read '{value}' ({err.strerror}): fix its permissions") from None


def check_context(kubeconfig: str, context: str | None) -> None:
    """Raise if ``context`` is set but not among the kubeconfig's contexts (unparseable text: no check)."""
    if context is None:
        return
    try:
        document = yaml.safe_load(kubeconfig)
    except yaml.YAMLError:
        return
    if not isinstance(document, dict):
        return
    names = [c.get("name") for c in document.get("contexts") or [] if isinstance(c, dict)]
    if context not in names:
        raise ValueError(
            f"{CONTEXT_KEY}: context '{context}' is not in the kubeconfig (contexts: "
            f"{', '.join(str(n) for n in names) or 'none'}): pick one of them or remove the key"
        )

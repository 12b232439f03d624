"""mpirun across the pods of a multi-node group over ssh: hostfile, hardened sshd, keys from a Secret.

The leader's mpirun starts orted on the worker pods through sshd on port 2222. Keys never travel
over the network: the group's client key and the (shared) host key come from a Kubernetes Secret
mounted read-only into every pod of the set (``mpi_ssh_secret``; :data:`SECRET_KEYS`). sshd runs
as the container's non-root user (it can log in nobody else), with no root login, no password
or keyboard-interactive authentication, no forwarding and ``PermitUserEnvironment no``; the
environment orted needs (PATH, LD_LIBRARY_PATH, fabric and TRT-LLM settings) is written by the
worker pod itself into its sshd_config as ``SetEnv`` (server-side, not client-controlled). The
leader pins the host key (``StrictHostKeyChecking yes`` against a ``known_hosts`` built from the
Secret), so a pod impersonating a worker cannot receive the ranks.

The stack generates the Secret (:mod:`components.serving.secrets`: two ED25519 keys from pulumi-tls,
kept encrypted in the stack's state). With ``mpiSshKeys: existing`` it reads one made outside the
stack instead (``secret_create_commands``)::

    ssh-keygen -q -t ed25519 -N "" -f id_ed25519 && ssh-keygen -q -t ed25519 -N "" -f ssh_host_ed25519_key
    kubectl -n <ns> create secret generic <name> --from-file=id_ed25519 --from-file=id_ed25519.pub \
        --from-file=ssh_host_ed25519_key --from-file=ssh_host_ed25519_key.pub
"""

from __future__ import annotations

import shlex

from components.serving.group_layout import GroupLayout
from components.serving.pods import STATE_DIR

SSH_PORT = 2222
"""sshd of multi-node worker pods (the leader's mpirun starts orted through it)."""
SECRET_MOUNT = "/etc/disagg/mpi-ssh"
"""Where the group's SSH Secret is mounted (read-only, mode 0440, group fsGroup)."""
SECRET_KEYS = ("id_ed25519", "id_ed25519.pub", "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub")
"""Keys of the Secret: the client key pair of the leaders and the host key pair of the workers."""
SSH_DIR = f"{STATE_DIR}/ssh"
"""Per-pod copies with the modes ssh insists on (0700 directory, 0600 keys)."""
HOSTFILE = f"{STATE_DIR}/hostfile"
"""The MPI hostfile the leader writes before mpirun."""
SSH_KEY = f"{SSH_DIR}/id_ed25519"
KNOWN_HOSTS = f"{SSH_DIR}/known_hosts"
WORKER_WAIT_S = 900
"""How long the leader waits for every worker pod's sshd before giving up (the group restarts)."""
RSH_ARGS = (
    f"-p {SSH_PORT} -i {SSH_KEY} -o StrictHostKeyChecking=yes -o UserKnownHostsFile={KNOWN_HOSTS} "
    "-o LogLevel=ERROR -o BatchMode=yes"
)
"""ssh options of mpirun's launcher (``plm_rsh_args``)."""
SSH_ENV_PATTERN = (
    "^(PATH|LD_LIBRARY_PATH|HOME|TMPDIR|XDG_CACHE_HOME|CUDA_[A-Z_]*|NVIDIA_[A-Z_]*|NCCL_[A-Z_]*|FI_[A-Z_]*|"
    "TRTLLM_[A-Z_]*|TLLM_[A-Z_]*|UCX_[A-Z_]*|NIXL_[A-Z_]*|OMPI_[A-Z_]*|OPAL_[A-Z_]*|HPCX_[A-Z_]*|"
    "ENGINE_DIR|HF_[A-Z_]*|TRITON_CACHE_DIR|TORCH[A-Z_]*)$"
)
"""Variables of the worker container set for ssh sessions (orted and the ranks it starts)."""

SSHD_CONFIG = (
    f"Port {SSH_PORT}",
    f"HostKey {SSH_DIR}/ssh_host_ed25519_key",
    f"PidFile {STATE_DIR}/sshd.pid",
    f"AuthorizedKeysFile {SSH_DIR}/authorized_keys",
    "PermitRootLogin no",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PermitEmptyPasswords no",
    "PermitUserEnvironment no",
    "AllowTcpForwarding no",
    "AllowAgentForwarding no",
    "X11Forwarding no",
    "PermitTunnel no",
    "UsePAM no",
    "StrictModes yes",
)
"""The worker pods' sshd_config (``SetEnv`` lines are appended at start)."""


def secret_volume(secret_name: str) -> dict:
    return {"name": "mpi-ssh", "secret": {"secretName": secret_name, "defaultMode": 0o440}}


def secret_mount() -> dict:
    return {"name": "mpi-ssh", "mountPath": SECRET_MOUNT, "readOnly": True}


def secret_create_commands(name: str, namespace: str) -> list[str]:
    """Shell commands creating the Secret a multi-node deployment expects."""
    files = " ".join(f"--from-file={k}" for k in SECRET_KEYS)
    return [
        'ssh-keygen -q -t ed25519 -N "" -f id_ed25519',
        'ssh-keygen -q -t ed25519 -N "" -f ssh_host_ed25519_key',
        f"kubectl -n {namespace} create secret generic {name} {files}",
    ]


def leader_hostfile_lines(layout: GroupLayout, leader_slots: int, worker_wait_s: int = WORKER_WAIT_S) -> list[str]:
    """bash building the MPI hostfile of a group (leader first); multi-node: ssh setup and waiting
    for every worker's sshd. Needs ``log`` defined and ``set -euo pipefail``."""
    if not layout.multi_node:
        return [f"mkdir -p {STATE_DIR}", f'echo "localhost slots={leader_slots}" > {HOSTFILE}']
    g, p = layout.gpus_per_pod, layout.pods_per_group
    return [
        f"mkdir -p {STATE_DIR}",
        f'if [ "${{LWS_GROUP_SIZE:-}}" != "{p}" ]; then',
        f'  log "LWS_GROUP_SIZE is ${{LWS_GROUP_SIZE:-unset}}, this template was rendered for {p} pods"',
        "  exit 1",
        "fi",
        "for tool in ssh getent python3; do",
        '  command -v "$tool" >/dev/null || { log "$tool is missing from the image: multi-node groups need '
        'openssh-client, getent and python3"; exit 1; }',
        "done",
        f"install -d -m 700 {SSH_DIR}",
        f"install -m 600 {SECRET_MOUNT}/id_ed25519 {SSH_KEY}",
        f'echo "* $(cat {SECRET_MOUNT}/ssh_host_ed25519_key.pub)" > {KNOWN_HOSTS}',
        'leader_host="${LWS_LEADER_ADDRESS%%.*}"',
        'domain="${LWS_LEADER_ADDRESS#*.}"',
        f'echo "$LWS_LEADER_ADDRESS slots={leader_slots}" > {HOSTFILE}',
        "tcp_check='import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 3).close()'",
        f"deadline=$((SECONDS + {worker_wait_s}))",
        f"for i in $(seq 1 {p - 1}); do",
        '  worker="$leader_host-$i.$domain"',
        f'  until getent hosts "$worker" >/dev/null && python3 -c "$tcp_check" "$worker" {SSH_PORT} 2>/dev/null; do',
        '    if [ "$SECONDS" -ge "$deadline" ]; then',
        f'      log "worker $worker did not resolve or accept SSH on port {SSH_PORT} within {worker_wait_s}s"',
        "      exit 1",
        "    fi",
        "    sleep 2",
        "  done",
        '  log "worker $worker is up"',
        f'  echo "$worker slots={g}" >> {HOSTFILE}',
        "done",
    ]


def mpirun_ssh_options() -> list[str]:
    """mpirun options starting orted on the worker pods over ssh (no tree spawn: only leaders hold
    the client key)."""
    return [
        "--mca", "plm_rsh_agent", "ssh",
        "--mca", "plm_rsh_args", RSH_ARGS,
        "--mca", "plm_rsh_no_tree_spawn", "1",
        "--mca", "orte_keep_fqdn_hostnames", "1",
    ]  # fmt: skip


def mpirun_base(hostfile: str = HOSTFILE) -> list[str]:
    """mpirun placing ranks slot by slot over the hostfile, TCP control traffic on eth0."""
    return [
        "mpirun",
        "--hostfile", hostfile,
        "--map-by", "slot",
        "--bind-to", "none",
        "--mca", "btl_tcp_if_include", "eth0",
        "--mca", "oob_tcp_if_include", "eth0",
    ]  # fmt: skip


_SETENV_PY = (
    "import os, re, sys; pat = re.compile(sys.argv[1]); "
    "[print('SetEnv \"%s=%s\"' % (k, v)) for k, v in sorted(os.environ.items()) "
    "if pat.match(k) and '\"' not in v and chr(10) not in v]"
)


def sshd_script() -> str:
    """bash run by the worker pods of a multi-node group: the hardened sshd, nothing else."""
    lines = [
        "set -euo pipefail",
        'log() { echo "[worker] $*" >&2; }',
        'sshd_bin="$(command -v sshd || true)"',
        'if [ -z "$sshd_bin" ]; then',
        '  log "this image has no sshd: multi-node groups need openssh-server in the image '
        '(apt-get install -y openssh-server)"',
        "  exit 1",
        "fi",
        'if ! getent passwd "$(id -u)" >/dev/null; then',
        '  log "user $(id -u) has no passwd entry in the image: sshd cannot log it in; run the pods as an '
        'existing user (runAsUser) or add one"',
        "  exit 1",
        "fi",
        'mkdir -p "${HOME:-/tmp}" "${XDG_CACHE_HOME:-/tmp}"',
        f"install -d -m 700 {SSH_DIR}",
        f"install -m 600 {SECRET_MOUNT}/id_ed25519.pub {SSH_DIR}/authorized_keys",
        f"install -m 600 {SECRET_MOUNT}/ssh_host_ed25519_key {SSH_DIR}/ssh_host_ed25519_key",
        f"cat > {STATE_DIR}/sshd_config <<'EOF'",
        *SSHD_CONFIG,
        "EOF",
        f"python3 -c {shlex.quote(_SETENV_PY)} {shlex.quote(SSH_ENV_PATTERN)} >> {STATE_DIR}/sshd_config",
        f'log "sshd on port {SSH_PORT} for the leader\'s mpirun"',
        f'exec "$sshd_bin" -D -e -f {STATE_DIR}/sshd_config',
        "",
    ]
    return "\n".join(lines)

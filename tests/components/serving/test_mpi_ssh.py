"""The hardened sshd of multi-node worker pods, run with stand-ins for sshd."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from components.serving.mpi_ssh import SECRET_MOUNT, SSHD_CONFIG, secret_create_commands, sshd_script
from components.serving.pods import STATE_DIR


def run_sshd(tmp_path: Path, env: dict[str, str], with_sshd: bool = True) -> subprocess.CompletedProcess:
    bin_dir, secret = tmp_path / "bin", tmp_path / "secret"
    bin_dir.mkdir()
    secret.mkdir()
    (secret / "id_ed25519.pub").write_text("ssh-ed25519 CLIENT leader\n")
    (secret / "ssh_host_ed25519_key").write_text("host-private\n")
    if with_sshd:
        sshd = bin_dir / "sshd"
        sshd.write_text('#!/bin/bash\nprintf "%s\\n" "$@" > "$STUB_DIR/sshd.args"\n')
        sshd.chmod(sshd.stat().st_mode | stat.S_IEXEC)
    script = sshd_script().replace(STATE_DIR, str(tmp_path / "state")).replace(SECRET_MOUNT, str(secret))
    (tmp_path / "state").mkdir()
    full_env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_DIR": str(bin_dir), **env}
    return subprocess.run(["bash", "-c", script], env=full_env, capture_output=True, text=True, timeout=60)


def test_sshd_installs_the_secret_keys_with_private_modes(tmp_path):
    proc = run_sshd(tmp_path, {})
    assert proc.returncode == 0, proc.stderr
    keys = tmp_path / "state" / "ssh" / "authorized_keys"
    assert keys.read_text() == "ssh-ed25519 CLIENT leader\n"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state" / "ssh").stat().st_mode) == 0o700
    assert (tmp_path / "bin" / "sshd.args").read_text().splitlines() == ["-D", "-e", "-f", f"{tmp_path}/state/sshd_config"]


def test_sshd_config_forbids_root_passwords_forwarding_and_user_environment(tmp_path):
    assert run_sshd(tmp_path, {}).returncode == 0
    config = (tmp_path / "state" / "sshd_config").read_text().splitlines()
    assert {"PermitRootLogin no", "PasswordAuthentication no", "PermitUserEnvironment no", "AllowTcpForwarding no",
            "Port 2222", "UsePAM no"} <= set(config)  # fmt: skip
    assert "PermitUserEnvironment yes" not in config and config[: len(SSHD_CONFIG)] == [
        line.replace(STATE_DIR, f"{tmp_path}/state") for line in SSHD_CONFIG
    ]


def test_sshd_sets_the_rank_environment_server_side(tmp_path):
    env = {"NCCL_DEBUG": "WARN", "FI_PROVIDER": "efa", "UNRELATED": "x", "TRTLLM_X": 'has"quote'}
    assert run_sshd(tmp_path, env).returncode == 0
    setenv = [line for line in (tmp_path / "state" / "sshd_config").read_text().splitlines() if line.startswith("SetEnv")]
    assert 'SetEnv "NCCL_DEBUG=WARN"' in setenv and 'SetEnv "FI_PROVIDER=efa"' in setenv
    assert any(line.startswith('SetEnv "PATH=') for line in setenv)
    assert not any("UNRELATED" in line or "TRTLLM_X" in line for line in setenv)


def test_sshd_missing_from_the_image_is_explained(tmp_path):
    if os.path.exists("/usr/bin/sshd") or os.path.exists("/bin/sshd"):
        pytest.skip("this machine has an sshd on the test PATH")
    proc = run_sshd(tmp_path, {}, with_sshd=False)
    assert proc.returncode == 1 and "this image has no sshd" in proc.stderr


def test_no_key_travels_over_http():
    assert "http" not in sshd_script()


def test_secret_commands_name_every_key():
    commands = secret_create_commands("llama-mpi-ssh", "llm")
    assert commands[-1] == (
        "kubectl -n llm create secret generic llama-mpi-ssh --from-file=id_ed25519 --from-file=id_ed25519.pub "
        "--from-file=ssh_host_ed25519_key --from-file=ssh_host_ed25519_key.pub"
    )

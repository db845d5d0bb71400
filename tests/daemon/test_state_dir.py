"""The state directory is refused, as OpenSSH's StrictModes refuses a home directory, where another user could
plant the daemon's state; files are made with exact modes whatever the umask, and never through a link."""

from __future__ import annotations

import hashlib
import os
import pickle
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sensor.daemon.checkpoint import PICKLED
from sensor.files import (
    UnsafeDirectoryError,
    check_private_directory,
    create_exclusive,
    open_append,
    write_atomically,
)
from tests.daemon.test_stateform import _RunsCode


def _run(config: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "sensor", "run", "--config", str(config)], capture_output=True,
                          timeout=60)


def _config(tmp_path: Path, state: Path) -> Path:
    config = tmp_path / "sensor.yaml"
    config.write_text(f"sensor: {{state_dir: {state}}}\nhoneyports: {{listen: []}}\noutputs: [{{type: stdout}}]\n")
    return config


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the directory to nobody")
def test_a_state_dir_another_user_owns_and_all_may_write_is_refused_before_its_checkpoint_is_read(
        tmp_path: Path) -> None:
    """The audit's finding: a 0777 state_dir owned by nobody with a planted pickle ran it as root."""
    state = tmp_path / "state"
    state.mkdir()
    marker = tmp_path / "code-ran"
    payload = pickle.dumps(_RunsCode(marker))
    (state / "checkpoint").write_bytes(PICKLED + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
    nobody = pwd.getpwnam("nobody")
    os.chown(state, nobody.pw_uid, nobody.pw_gid)
    state.chmod(0o777)
    done = _run(_config(tmp_path, state))
    assert done.returncode == 2, done.stderr.decode()
    assert not marker.exists(), "the planted checkpoint ran"
    assert f"state_dir {state}: {state} is owned by uid {nobody.pw_uid}".encode() in done.stderr
    assert b"another user could plant the daemon's state there" in done.stderr
    assert len(done.stderr.decode().strip().splitlines()) == 1, "one clear line"


def test_a_state_dir_others_may_write_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    done = _run(_config(tmp_path, state))
    assert done.returncode == 2
    assert b"can be written by other users (mode 0777)" in done.stderr
    assert not (state / "daemon.lock").exists(), "nothing is made there"


def test_a_directory_above_that_others_may_write_is_refused_unless_sticky_and_root_owned(tmp_path: Path) -> None:
    above = tmp_path / "shared"
    above.mkdir()
    above.chmod(0o777)
    with pytest.raises(UnsafeDirectoryError, match=r"shared can be written by other users \(mode 0777\); "
                                                    r"another user could plant"):
        check_private_directory(above / "state")
    if os.geteuid() == 0:
        above.chmod(0o1777)  # like /tmp: others may add names, not rename ours
        check_private_directory(above / "state")
        assert stat.S_IMODE((above / "state").stat().st_mode) == 0o700


def test_a_missing_state_dir_is_made_private(tmp_path: Path) -> None:
    check_private_directory(tmp_path / "new" / "state")
    assert stat.S_IMODE((tmp_path / "new" / "state").stat().st_mode) == 0o700


def test_files_get_exact_modes_whatever_the_umask_and_never_follow_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    link = tmp_path / "planted"
    link.symlink_to(victim)
    previous = os.umask(0)
    try:
        with pytest.raises(FileExistsError):
            create_exclusive(link)
        with pytest.raises(OSError, match="Too many levels of symbolic links"):
            open_append(link)
        write_atomically(link, b"new state")  # replaces the link itself
        assert victim.read_bytes() == b"untouched"
        assert not link.is_symlink() and link.read_bytes() == b"new state"
        assert stat.S_IMODE(link.stat().st_mode) == 0o600
        os.close(open_append(tmp_path / "appended"))
        assert stat.S_IMODE((tmp_path / "appended").stat().st_mode) == 0o600
        os.close(open_append(tmp_path / "shared", os.getegid()))
        assert stat.S_IMODE((tmp_path / "shared").stat().st_mode) == 0o640
    finally:
        os.umask(previous)


def test_check_config_names_a_state_dir_others_may_write(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    done = subprocess.run([sys.executable, "-m", "sensor", "check-config", str(_config(tmp_path, state))],
                          capture_output=True, timeout=60)
    assert done.returncode == 2
    assert b"sensor.state_dir " + str(state).encode() + b": " in done.stderr + done.stdout
    assert b"can be written by other users (mode 0777)" in done.stderr + done.stdout

"""The run lock: one send of a run at a time, released however the holder ends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kzmail.errors import StateError
from kzmail.state.runlock import lock_path, run_lock


def test_a_held_run_refuses_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    with run_lock(tmp_path, "kasachstan"):
        with (
            pytest.raises(StateError, match=f"process {os.getpid()}\\)"),
            run_lock(tmp_path, "kasachstan"),
        ):
            pass
        with run_lock(tmp_path, "kasachstan#test"):  # another run is another lock
            pass
    with run_lock(tmp_path, "kasachstan"):  # released on leaving
        pass
    assert lock_path(tmp_path, "kasachstan") != lock_path(tmp_path, "kasachstan#test")
    assert oct(lock_path(tmp_path, "kasachstan").stat().st_mode & 0o777) == "0o600"


def test_an_unusable_state_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with (
        pytest.raises(StateError, match="cannot create the lock file"),
        run_lock(tmp_path / "file", "kasachstan"),
    ):
        pass

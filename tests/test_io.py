"""midlevel.io: atomic writers give files the usual permission bits and warn when they clip."""
import os
import stat

import numpy as np
import pytest
import soundfile as sf

from midlevel import io


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test, restoring it afterwards."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_new_file_gets_mode_from_umask(tmp_path, umask, mask):
    umask(mask)
    assert io.current_umask() == mask
    for writer, name in [(lambda p: io.write_text(p, "x"), "a.txt"),
                         (lambda p: io.write_npy(p, np.zeros(3)), "a.npy"),
                         (lambda p: io.write_wav(p, np.zeros(100), 8000), "a.wav")]:
        path = tmp_path / name
        writer(path)
        assert _mode(path) == 0o666 & ~mask, name


def test_rewriting_a_file_keeps_its_mode(tmp_path, umask):
    umask(0o077)
    path = tmp_path / "shared.csv"
    path.write_text("old")
    os.chmod(path, 0o664)
    io.write_text(path, "new")
    assert path.read_text() == "new"
    assert _mode(path) == 0o664
    os.chmod(path, 0o444)
    io.write_text(path, "newer")
    assert path.read_text() == "newer" and _mode(path) == 0o444
    assert not list(tmp_path.glob(".*.tmp"))

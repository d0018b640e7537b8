"""User folders follow each system's conventions; atomic writes leave no half file."""

from __future__ import annotations

from pathlib import Path

import pytest
from platformdirs.macos import MacOS

from digitrec.files import user_folder, write_atomic


def test_linux_folders_honour_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert user_folder("cache") == tmp_path / "cache" / "digitrec"
    assert user_folder("data") == tmp_path / "data" / "digitrec"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert user_folder("cache") == tmp_path / ".cache" / "digitrec"
    assert user_folder("data") == tmp_path / ".local" / "share" / "digitrec"


def test_macos_gets_its_library_folders(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert user_folder("cache", MacOS) == tmp_path / "Library" / "Caches" / "digitrec"
    assert user_folder("data", MacOS) == tmp_path / "Library" / "Application Support" / "digitrec"


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "kept.bin"
    write_atomic(path, b"old")
    with pytest.raises(TypeError):
        write_atomic(path, "not bytes")  # fails inside the block
    assert path.read_bytes() == b"old"
    assert [p.name for p in Path(tmp_path).iterdir()] == ["kept.bin"]

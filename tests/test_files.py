"""files: whole files or nothing, under the names and folders a batch meets."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from lettergen import files
from lettergen.errors import OutputError


def test_a_missing_folder_is_made(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "letter.md"
    files.write_outputs({target: b"text", target.with_suffix(".json"): b"{}"}, durable=False)
    assert target.read_bytes() == b"text" and target.with_suffix(".json").read_bytes() == b"{}"
    assert sorted(p.name for p in target.parent.iterdir()) == ["letter.json", "letter.md"]


def test_a_taken_temporary_name_falls_back_to_a_random_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A crashed process with the same pid left its temporary file behind: it is neither reused nor touched.
    monkeypatch.setattr(files, "_COUNTER", itertools.count(7))
    stale = tmp_path / f".letter.md.{os.getpid()}.7.tmp"
    stale.write_bytes(b"stale")
    files.write_atomic(tmp_path / "letter.md", b"fresh")
    assert (tmp_path / "letter.md").read_bytes() == b"fresh" and stale.read_bytes() == b"stale"
    assert len(list(tmp_path.iterdir())) == 2  # the letter and the stale file, no temporary left


def test_an_unwritable_folder_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Permissions do not stop root (CI runs as root), so the refusal comes from os.open itself, on the
    # second file, after the first is staged.
    real_open, calls = os.open, []

    def refusing(path: str, *args: object) -> int:
        calls.append(path)
        if len(calls) == 2:
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing)
    with pytest.raises(OutputError, match="cannot write output"):
        files.write_outputs({tmp_path / "letter.md": b"x", tmp_path / "ledger.json": b"{}"})
    assert list(tmp_path.iterdir()) == []


def test_a_failed_second_file_removes_the_first(tmp_path: Path) -> None:
    good = tmp_path / "letter.md"
    blocked = tmp_path / "file" / "ledger.json"  # its folder would have to be a regular file
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OutputError):
        files.write_outputs({good: b"x", blocked: b"{}"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize("chunk", [1, 7, 4096, 10**6])
@pytest.mark.parametrize("size", [0, 1, 8191, 70_000])
def test_short_writes_are_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, size: int) -> None:
    # os.write may write less than asked (a signal, a pipe); the staged file must still be whole.
    real = os.write
    calls = []

    def short(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return real(fd, bytes(data[:chunk]))

    monkeypatch.setattr(files.os, "write", short)
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    files.write_atomic(tmp_path / "f.bin", data)
    monkeypatch.undo()
    assert (tmp_path / "f.bin").read_bytes() == data
    assert len(calls) == -(-size // chunk)  # one call per chunk, none for an empty file

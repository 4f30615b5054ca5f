"""The knowledge-base cache (lettergen.kb_cache): a hit is the same knowledge base, anything else rebuilds."""

from __future__ import annotations

import logging
import os
import pickle
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import ROOT

from lettergen import kb_cache
from lettergen.errors import DataError
from lettergen.kb import KnowledgeBase, _load_kb, load_kb

POLICY = "criteria/needle-biopsy-soft-tissue.yaml"


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private copy of the knowledge base and an empty cache; the lru cache is cleared around each load."""
    root = tmp_path / "data"
    for folder in ("citations", "criteria"):
        shutil.copytree(ROOT / folder, root / folder)
    monkeypatch.setenv("LETTERGEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("LETTERGEN_KB_CACHE", raising=False)
    _load_kb.cache_clear()
    yield root
    _load_kb.cache_clear()


def fresh(root: Path) -> KnowledgeBase:
    _load_kb.cache_clear()
    return load_kb(root)


def entries(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "kb").glob("*.pickle"))


def same(a: KnowledgeBase, b: KnowledgeBase) -> bool:
    return (a.sources, a.policies, a.questions, a.hashes, a.by_code) == (
        b.sources,
        b.policies,
        b.questions,
        b.hashes,
        b.by_code,
    )


def test_a_second_load_reads_the_entry_and_gives_the_same_knowledge_base(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = fresh(data)
    assert len(entries(tmp_path)) == 1
    reads: list[object] = []
    real_load = kb_cache.load

    def load(key: str) -> object | None:
        reads.append(real_load(key))
        return reads[-1]

    monkeypatch.setattr(kb_cache, "load", load)
    again = fresh(data)
    assert isinstance(reads[0], KnowledgeBase)  # the hit came from the entry, not from the files
    assert same(again, built) and again.root == data
    # the same content under another root is the same entry, and takes that root
    moved = tmp_path / "moved"
    shutil.copytree(data, moved)
    elsewhere = fresh(moved)
    assert same(elsewhere, built) and elsewhere.root == moved and len(entries(tmp_path)) == 1


def _edit_policy(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = root / POLICY
    path.write_text(path.read_text().replace("title: ", "title: Edited ", 1))


def _no_cache(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETTERGEN_KB_CACHE", "0")


@pytest.mark.parametrize(
    ("change", "new_entries"),
    [(_edit_policy, 2), (_no_cache, 1)],
    ids=["edited-data-file-misses", "cache-off-writes-nothing"],
)
def test_changes_that_must_not_use_the_old_entry(
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[Path, pytest.MonkeyPatch], None],
    new_entries: int,
) -> None:
    before = fresh(data)
    change(data, monkeypatch)
    after = fresh(data)
    assert len(entries(tmp_path)) == new_entries
    edited = "Edited" in (data / POLICY).read_text()
    assert (after.hashes != before.hashes) is edited
    title = after.policies["needle-biopsy-soft-tissue"].title
    assert title.startswith("Edited") is edited


def _garbage(entry: Path, kb: KnowledgeBase) -> None:
    entry.write_bytes(b"\x80\x05 not a pickle")


def _torn(entry: Path, kb: KnowledgeBase) -> None:
    entry.write_bytes(entry.read_bytes()[:1000])


def _other_hashes(entry: Path, kb: KnowledgeBase) -> None:
    entry.write_bytes(pickle.dumps(replace(kb, hashes={"citations/x.yaml": "0" * 64})))


def _not_a_kb(entry: Path, kb: KnowledgeBase) -> None:
    entry.write_bytes(pickle.dumps({"sources": {}}))


def _group_writable(entry: Path, kb: KnowledgeBase) -> None:
    poisoned = replace(kb, policies={})  # a pickle that loads fine, planted where others could write it
    entry.write_bytes(pickle.dumps(poisoned))
    entry.chmod(0o664)


@pytest.mark.parametrize(
    "damage",
    [_garbage, _torn, _other_hashes, _not_a_kb, _group_writable],
    ids=["garbage", "torn", "other-hashes", "not-a-knowledge-base", "group-writable"],
)
def test_a_bad_entry_is_ignored_and_the_files_are_read(
    data: Path, tmp_path: Path, damage: Callable[[Path, KnowledgeBase], None], caplog: pytest.LogCaptureFixture
) -> None:
    built = fresh(data)
    (entry,) = entries(tmp_path)
    damage(entry, built)
    with caplog.at_level(logging.WARNING, logger="lettergen.kb"):
        again = fresh(data)
    assert same(again, built)
    if damage in (_garbage, _torn, _group_writable):
        assert "knowledge-base cache: ignoring" in caplog.text
    if damage is not _group_writable:  # rebuilt and stored again, readable next time
        assert isinstance(pickle.loads(entry.read_bytes()), KnowledgeBase)


def test_a_broken_knowledge_base_is_never_stored(data: Path, tmp_path: Path) -> None:
    (data / POLICY).write_text("id: [unclosed\n")
    for _ in range(2):  # reported on every load, not only the first
        with pytest.raises(DataError, match=r"needle-biopsy-soft-tissue\.yaml"):
            fresh(data)
    assert entries(tmp_path) == []


def test_an_unwritable_cache_costs_time_not_a_failure(data: Path, tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    assert same(fresh(data), fresh(data))


def test_the_key_covers_the_code_the_entry_is_made_of(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hashes = {"criteria/a.yaml": "1" * 64}
    base = kb_cache.key(hashes)
    assert base is not None and kb_cache.key(hashes) == base
    assert kb_cache.key({"criteria/a.yaml": "2" * 64}) != base
    code = tmp_path / "code"
    shutil.copytree(ROOT / "lettergen", code)
    monkeypatch.setattr(kb_cache, "_HERE", code)
    assert kb_cache.key(hashes) == base
    (code / "policies.py").write_text((code / "policies.py").read_text() + "\n# an edit\n")
    assert kb_cache.key(hashes) != base
    (code / "policies.py").unlink()
    assert kb_cache.key(hashes) is None  # code that cannot be read is never keyed


def test_old_entries_are_pruned(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kb_cache, "KEEP", 2)
    for i in range(4):
        kb_cache.store(f"{i:064d}", {"n": i})
        os.utime(tmp_path / "cache" / "kb" / f"{i:064d}.pickle", (1000 + i, 1000 + i))
    kb_cache.store("f" * 64, {"n": 9})
    assert [p.stem[-1] for p in entries(tmp_path)] == ["3", "f"]

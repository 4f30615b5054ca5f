"""The compiled-template cache (lettergen.template_cache): a hit renders the same letter, anything else compiles."""

from __future__ import annotations

import io
import logging
import marshal
import os
import pickle
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import jinja2
import pytest
from conftest import CHORDOMA, ROOT
from jinja2.bccache import bc_magic

from lettergen import api, render, template_cache
from lettergen.kb import load_kb

DAY = date(2026, 11, 21)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache folder, and environments built afresh (they are cached per folder and format)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("LETTERGEN_CACHE_DIR", str(folder))
    monkeypatch.delenv("LETTERGEN_TEMPLATE_CACHE", raising=False)
    render._env.cache_clear()
    yield folder / "templates"
    render._env.cache_clear()


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the templates Jinja compiles from source."""
    names: list[str] = []
    real = jinja2.Environment.compile

    def compile(self: jinja2.Environment, source: str, name: str | None = None, *a: object, **k: object) -> object:
        names.append(str(name))
        return real(self, source, name, *a, **k)  # type: ignore[call-overload]

    monkeypatch.setattr(jinja2.Environment, "compile", compile)
    return names


def letter(fmt: str = "md", ltype: str | None = None) -> bytes:
    kb = load_kb()
    return api.draft(api.load_case(str(CHORDOMA), kb=kb), kb=kb, fmt=fmt, letter_type=ltype, letter_date=DAY).content


def fresh() -> None:
    """What a new process has: no environment yet."""
    render._env.cache_clear()


@pytest.mark.parametrize(("fmt", "ltype"), [("md", None), ("txt", "determination"), ("html", None)])
def test_a_second_process_loads_the_code_and_drafts_the_same_letter(
    cache: Path, compiles: list[str], fmt: str, ltype: str | None
) -> None:
    first = letter(fmt, ltype)
    assert compiles and len(list(cache.iterdir())) == len(compiles)
    compiles.clear()
    fresh()
    assert letter(fmt, ltype) == first
    assert compiles == []  # every template and include came from the cache


@pytest.mark.parametrize(("a", "b"), [("md", "txt"), ("md", "html"), ("txt", "html")])
def test_each_format_has_its_own_entries(cache: Path, compiles: list[str], a: str, b: str) -> None:
    # Constant filter calls are folded in at compile time: "Re:" | bold is "**Re:**" in md, "Re:" in txt
    # (both with the same options and filter names) and "<strong>" in html.
    first = letter(a)
    for_a = list(compiles)
    compiles.clear()
    fresh()
    second = letter(b)
    assert set(for_a) <= set(compiles) and first != second  # none of a's entries served b
    assert len(list(cache.iterdir())) == len(for_a) + len(compiles)
    compiles.clear()
    fresh()
    assert letter(a) == first and letter(b) == second and compiles == []


def test_an_edited_template_is_compiled_again(
    cache: Path, compiles: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    for folder in ("citations", "criteria", "templates"):
        shutil.copytree(ROOT / folder, data / folder)
    monkeypatch.setenv("LETTERGEN_DATA", str(data))
    letter()
    fresh()
    lmn = data / "templates" / "lmn.j2"
    lmn.write_text(lmn.read_text().replace("Dear Medical Director:", "Dear Reviewer:"))
    compiles.clear()
    text = letter().decode()
    assert compiles == ["lmn.j2"] and "Dear Reviewer:" in text
    fresh()
    compiles.clear()
    assert "Dear Reviewer:" in letter().decode() and compiles == []  # the entry was replaced


@pytest.mark.parametrize(
    "change",
    [
        "the filters' module",
        "the layout module",
        "Jinja's version",
        "the environment's options",
    ],
)
def test_the_key_covers_what_the_code_depends_on(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    env = render._env(str(render.templates_dir()), "md")
    base = template_cache.flavour(env, "md")
    assert base is not None and template_cache.flavour(env, "md") == base
    assert template_cache.flavour(env, "txt") != base
    code = tmp_path / "code"
    code.mkdir()
    for name in ("render.py", "layout.py"):
        shutil.copy(ROOT / "lettergen" / name, code / name)
    monkeypatch.setattr(template_cache, "_HERE", code)
    assert template_cache.flavour(env, "md") == base
    if change == "the filters' module":
        (code / "render.py").write_text((code / "render.py").read_text() + "\n# an edit\n")
    elif change == "the layout module":
        (code / "layout.py").write_text((code / "layout.py").read_text() + "\n# an edit\n")
    elif change == "Jinja's version":
        monkeypatch.setattr(jinja2, "__version__", "0.0.0")
    else:
        monkeypatch.setattr(env, "trim_blocks", False)
    assert template_cache.flavour(env, "md") != base
    (code / "layout.py").unlink()
    assert template_cache.flavour(env, "md") is None  # code that cannot be read is never keyed


def corrupt(entry: Path, how: str) -> None:
    data = entry.read_bytes()
    if how == "empty":
        entry.write_bytes(b"")
    elif how == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        entry.write_bytes(os.urandom(len(data)))
    elif how == "wrong magic":
        entry.write_bytes(b"xx" + data[2:])
    elif how in ("bad code after a good header", "not code after a good header"):
        head = io.BytesIO(data)
        assert head.read(len(bc_magic)) == bc_magic
        pickle.load(head)  # the source's checksum
        body = b"\xff" * 64 if how.startswith("bad") else marshal.dumps(42)
        entry.write_bytes(data[: head.tell()] + body)
    elif how == "others can write to it":
        entry.chmod(0o666)
    elif how == "a symbolic link":
        target = entry.with_suffix(".real")
        entry.rename(target)
        entry.symlink_to(target)


@pytest.mark.parametrize(
    "how",
    [
        "empty",
        "truncated",
        "garbage",
        "wrong magic",
        "bad code after a good header",
        "not code after a good header",
        "others can write to it",
        "a symbolic link",
    ],
)
def test_a_bad_entry_is_ignored_and_the_template_compiled(
    cache: Path, compiles: list[str], how: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = letter()
    for entry in cache.iterdir():
        corrupt(entry, how)
    fresh()
    compiles.clear()
    with caplog.at_level(logging.WARNING, logger="lettergen.render"):
        assert letter() == first
    assert compiles  # compiled, not loaded
    if how == "others can write to it":
        assert "another user owns it or can write to it" in caplog.text
    if how == "not code after a good header":
        assert "ignoring corrupt entry" in caplog.text


def test_an_unwritable_cache_costs_time_not_a_failure(cache: Path, compiles: list[str]) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_text("a file where the folder should be")
    first = letter()
    fresh()
    compiles.clear()
    assert letter() == first and compiles


def test_the_cache_can_be_turned_off(cache: Path, compiles: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETTERGEN_TEMPLATE_CACHE", "0")
    letter()
    fresh()
    compiles.clear()
    letter()
    assert compiles and not cache.exists()


def test_old_entries_are_pruned(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(template_cache, "KEEP", 3)
    letter()
    assert len(list(cache.iterdir())) == 3

#!/usr/bin/env python3
"""Fail when site-packages holds a .pth file that is not on the allow-list.

A .pth file runs code at every interpreter start-up; the compromised litellm releases (1.82.7, 1.82.8)
shipped one. Run with the interpreter whose site-packages to check: ``.venv/bin/python .ci/check_pth.py``.
Exit 0 when every .pth file is allowed, 1 otherwise (each offender on its own line).
"""

from __future__ import annotations

import fnmatch
import site
import sys
from pathlib import Path

ALLOWED = (
    "distutils-precedence.pth",  # setuptools' distutils shim
    "_virtualenv.pth",  # virtualenv's own patch
    "_editable_impl_lettergen.pth",  # this project, installed editable (hatchling)
    "_lettergen.pth",
    "__editable__.lettergen-*.pth",  # this project, installed editable (setuptools-style)
)


def site_dirs() -> list[Path]:
    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    return sorted({Path(d) for d in dirs if Path(d).is_dir()})


def offenders(dirs: list[Path]) -> list[Path]:
    return [
        p
        for d in dirs
        for p in sorted(d.glob("*.pth"))
        if not any(fnmatch.fnmatch(p.name, pattern) for pattern in ALLOWED)
    ]


def main() -> int:
    bad = offenders(site_dirs())
    for p in bad:
        print(f"unexpected .pth file (runs code at start-up): {p}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Marked sections of ``docs/benchmarks.md`` that separate benchmark commands own.

``python -m bench`` writes the whole file; the maintenance benchmarks (``python -m
bench.lifecycle``, ``python -m bench.gc``) each own one section, delimited by
``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``. A run replaces its own section (or
appends it) and leaves the rest alone; the main benchmark carries every marked section over
when it rewrites the file, so no command erases another's figures.
"""

from __future__ import annotations

import re
from pathlib import Path

_SECTION = re.compile(r"<!-- bench:(?P<name>[\w-]+) -->\n.*?<!-- /bench:(?P=name) -->\n", re.S)


def _wrap(name: str, body: str) -> str:
    return f"<!-- bench:{name} -->\n{body.rstrip()}\n<!-- /bench:{name} -->\n"


def replace_section(path: Path, name: str, body: str) -> None:
    """Write ``body`` as section ``name`` of the file at ``path``, in place or at the end."""
    text = path.read_text() if path.exists() else ""
    block = _wrap(name, body)
    for match in _SECTION.finditer(text):
        if match.group("name") == name:
            text = text[: match.start()] + block + text[match.end() :]
            break
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "") + block
    path.write_text(text)


def marked_sections(path: Path) -> list[str]:
    """Every marked section of the file at ``path`` (none when it does not exist)."""
    if not path.exists():
        return []
    return [match.group(0) for match in _SECTION.finditer(path.read_text())]

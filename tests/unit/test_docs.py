"""The documents in the repository and the references to them stay true.

Docstrings, comments, the README and the documents themselves point to
``docs/design.md`` and ``docs/api.md`` by section name in quotes
(``docs/design.md, "Time"``); each name must be a heading of that document. Dotted
``nvr.x.y`` names in docstrings and documents must name a module (or something in one),
and the README's tour of the code must name every package of the layer diagram.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import REPO
from tests.unit.test_layers import LAYERS

DOCS = {"design.md": REPO / "docs" / "design.md", "api.md": REPO / "docs" / "api.md"}
TEXT_SUFFIXES = {".py", ".md", ".sql", ".toml", ".sh", ".js", ".css", ".html", ".service"}
# What reads like a dotted nvr name but is not a module: host names, files, JS fields.
NOT_MODULES = re.compile(
    r"nvr\.(example\.|lan|local|log|toml|service|live|playback|ui|db$|__main__$)")


def _files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "nvr", "tests", "tools", "README.md", "docs", "conf"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    this = Path(__file__).resolve()  # its examples are wrong on purpose
    return [REPO / f for f in out if Path(f).suffix in TEXT_SUFFIXES and REPO / f != this]


def _flat(text: str) -> str:
    """Joins wrapped lines of docstrings and comments (``#:``, ``#``, ``--``, ``//``)."""
    return re.sub(r"\s*\n\s*(?:#:?|--|//)?\s*", " ", text)


def headings(doc: Path) -> set[str]:
    return {m.group(1).strip() for m in re.finditer(r"^#{2,4} (.+)$", doc.read_text(), re.M)}


REFERENCE = re.compile(r"(design|api)\.md`?\)?(,|\s\(|:)\s*(\S)")
QUOTED = re.compile(r'(design|api)\.md`?\)?(?:,|\s\(|:)\s*"([^"]+)"')


def references(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(document, section) for every quoted reference, and every unquoted one."""
    flat = _flat(text)
    quoted = [(f"{m.group(1)}.md", m.group(2)) for m in QUOTED.finditer(flat)]
    unquoted = [
        flat[m.start() : m.start() + 60]
        for m in REFERENCE.finditer(flat)
        if m.group(3) != '"' and m.group(3)[0].isupper()
    ]
    return quoted, unquoted


def test_no_reference_to_the_old_contract() -> None:
    old = "DESIGN" + ".md"
    assert [str(f) for f in _files() if old in f.read_text()] == []


def test_section_references_name_real_headings() -> None:
    found = 0
    wrong: list[str] = []
    for path in _files():
        quoted, unquoted = references(path.read_text())
        wrong += [f"{path.relative_to(REPO)}: unquoted section: {u!r}" for u in unquoted]
        for doc, section in quoted:
            found += 1
            if section not in headings(DOCS[doc]):
                wrong.append(f"{path.relative_to(REPO)}: {doc} has no section {section!r}")
    assert wrong == []
    assert found > 20  # the pattern still matches how references are written


def test_references_are_read_as_the_test_means() -> None:
    text = '''(docs/design.md, "On-disk
    formats") and docs/design.md ("Time"); [`design.md`](design.md), "Web and API";
    #: see docs/api.md, Conventions'''
    quoted, unquoted = references(text)
    assert quoted == [
        ("design.md", "On-disk formats"),
        ("design.md", "Time"),
        ("design.md", "Web and API"),
    ]
    assert len(unquoted) == 1 and "Conventions" in unquoted[0]


def _resolves(name: str) -> bool:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        if module.endswith("__main__"):
            continue
        try:
            obj: object = importlib.import_module(module)
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_dotted_names_in_the_code_and_documents_exist() -> None:
    missing: set[str] = set()
    for path in _files():
        if "tests/" in str(path.relative_to(REPO)) and path.suffix == ".py":
            # the suite's own text: variables named nvr (a running daemon) read alike
            continue
        for m in re.finditer(r"(?<![\w./-])nvr(?:\.[A-Za-z_]\w*)+", path.read_text()):
            name = m.group(0)
            if not NOT_MODULES.match(name) and not _resolves(name):
                missing.add(f"{path.relative_to(REPO)}: {name}")
    assert sorted(missing) == []


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_the_readme_tour_names_every_package(package: str) -> None:
    readme = (REPO / "README.md").read_text()
    tour = readme[readme.index("## How it works") : readme.index("## Documentation")]
    assert f"`nvr/{package}`" in tour or f"`nvr/{package}.py`" in tour


def _package_entries() -> dict[str, str]:
    """Package -> its entry in the design's package list (one bullet, joined)."""
    text = DOCS["design.md"].read_text()
    section = text[text.index("## Layers and packages") : text.index("## The nursery tree")]
    entries: dict[str, str] = {}
    for bullet in re.split(r"\n(?=- \*\*`)", section)[1:]:
        name = re.match(r"- \*\*`([a-z_0-9]+)(?:/|\.py)`\*\*", bullet)
        assert name is not None, bullet[:60]
        entries[name.group(1)] = bullet
    return entries


def test_the_design_names_every_file_in_its_package_entry() -> None:
    entries = _package_entries()
    assert set(entries) == set(LAYERS)
    unnamed = []
    for path in sorted((REPO / "nvr").rglob("*")):
        if path.suffix not in (".py", ".sql") or path.name == "__init__.py":
            continue
        parts = path.relative_to(REPO / "nvr").parts
        if len(parts) == 1:
            continue  # a top-level module is an entry itself (or __main__, named above)
        if f"`{path.name}`" not in entries[parts[0]]:
            unnamed.append(str(path.relative_to(REPO)))
    assert unnamed == []


def test_every_package_says_what_belongs_in_it() -> None:
    # (and is a regular package: setuptools' find_packages skips a folder without
    # __init__.py, so ``pip install .`` would leave it out)
    missing = []
    for init in [p / "__init__.py" for p in (REPO / "nvr").rglob("*") if p.is_dir()]:
        if init.parent.name in ("static", "templates", "__pycache__"):
            continue
        if not init.exists() or not ast.get_docstring(ast.parse(init.read_text())):
            missing.append(str(init.relative_to(REPO)))
    assert missing == []

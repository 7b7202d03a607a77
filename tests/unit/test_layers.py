"""The import contract of docs/design.md, "Layers and packages", checked on every module.

The layer map has one home: the diagram in that section of the design. This test parses
it (``A <- B``: B may import A and whatever A may; ``{x, y}`` are siblings, which import
neither each other) and walks every module of ``nvr/`` with ``ast``: an import of a
package the diagram does not place below the importer fails, and so does a third-party
library imported outside the modules listed for it in ``LIBRARIES`` (the design's
"Libraries by layer" paragraph, with each exception and why). Imports under
``if TYPE_CHECKING:`` and inside functions count like any other: they are dependencies
too. The checker itself is tested on synthetic trees, so it is known to fail.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import REPO

DESIGN = REPO / "docs" / "design.md"
SECTION = "## Layers and packages"

# Modules outside any package of the diagram: the package root belongs with ``base``
# (it holds only ``__version__``), ``python -m nvr`` is the command line.
ROOT_PACKAGE = {"": "base", "__main__": "cli"}

# Packages below ``ingest`` that stay free of ``trio`` (with ``config`` and ``offline``,
# which are synchronous too); ``base`` is there except for its two documented modules.
TRIO_FREE = frozenset({"base", "db", "codec", "storage", "config", "offline"})


@dataclass(frozen=True)
class Library:
    """A third-party (or stdlib) module and the only modules of nvr that may import it."""

    allowed: tuple[str, ...]  # module names or package prefixes ("nvr.web")
    why: str


def _trio_users(layers: Mapping[str, frozenset[str]]) -> tuple[str, ...]:
    above = sorted(f"nvr.{p}" for p in layers if p not in TRIO_FREE)
    return ("nvr.base.clock", "nvr.base.blocking", *above)


def libraries(layers: Mapping[str, frozenset[str]]) -> dict[str, Library]:
    """The design's "Libraries by layer", as the test enforces it."""
    trio_users = _trio_users(layers)
    web = ("nvr.web",)
    return {
        "sqlite3": Library(("nvr.db",), "every SQL statement lives in db"),
        "av": Library(
            ("nvr.ingest.demuxer", "nvr.thumbnail", "nvr.motion.decode", "nvr.cli.demo",
             "nvr.transcode"),
            "the demuxer is the only camera reader; thumbnail decodes recorded frames; motion "
            "decodes the frames it analyses; the demo encodes its synthetic clip; transcode "
            "re-encodes recorded frames for browsers",
        ),
        "trio": Library(
            trio_users,
            "below ingest only the clocks and the thread seam (base) know the event loop",
        ),
        "trio_util": Library(trio_users, "as trio"),
        "threading": Library(
            ("nvr.ingest.demuxer", "nvr.ingest.pyav_source"),
            "each camera session's reader thread, the one documented exception to the "
            "thread seam (docs/design.md, \"Time\"); everything else uses run_blocking",
        ),
        "time": Library(
            ("nvr.base.clock",),
            "time is read only through Clocks (the stopwatches are documented in clock.py)",
        ),
        "quart": Library(web, "HTTP is web's"),
        "quart_trio": Library(web, "HTTP is web's"),
        "hypercorn": Library(web, "HTTP is web's"),
        "h11": Library(web, "HTTP is web's (the server's workarounds)"),
        "werkzeug": Library(web, "HTTP is web's"),
        "prometheus_client": Library(
            ("nvr.ops", "nvr.web"),
            "metrics are ops'; web reports its own (connections, the thumbnail cache)",
        ),
        "argon2": Library(("nvr.db.auth",), "password hashes are stored and checked in db"),
        "boto3": Library(("nvr.archive.client",), "object storage is behind the archive's seam"),
        "botocore": Library(("nvr.archive.client",), "as boto3"),
        "urllib3": Library(("nvr.archive.client",), "as boto3 (its PUTs)"),
    }


# Narrower than the diagram: codec needs from db only the value type it fills in.
NARROWER = {"codec": {"db": ("nvr.db.recording",)}}


def parse_layers(design_text: str) -> dict[str, frozenset[str]]:
    """Package -> every package it may import, from the first code block of the section."""
    start = design_text.index(SECTION)
    block = re.search(r"```\n(.*?)```", design_text[start:], re.S)
    assert block is not None, f"no layer diagram under {SECTION!r} in docs/design.md"
    below: dict[str, set[str]] = {}
    for raw in block.group(1).splitlines():
        line = raw.split("(")[0].strip()  # a trailing "(...)" is commentary
        if not line:
            continue
        steps = [re.findall(r"[a-z_0-9]+", step) for step in line.split("<-")]
        assert all(steps), f"cannot read layer line {raw!r}"
        for step in steps:
            for pkg in step:
                below.setdefault(pkg, set())
        for lower, upper in itertools.pairwise(steps):
            for pkg in upper:
                below[pkg].update(lower)
    closed: dict[str, frozenset[str]] = {}

    def close(pkg: str, seen: tuple[str, ...]) -> frozenset[str]:
        assert pkg not in seen, f"layer cycle: {' <- '.join((*seen, pkg))}"
        if pkg not in closed:
            out = set(below[pkg])
            for lower in below[pkg]:
                out |= close(lower, (*seen, pkg))
            closed[pkg] = frozenset(out)
        return closed[pkg]

    for pkg in below:
        close(pkg, ())
    return closed


def package_of(module: str) -> str:
    """``nvr.db.raw`` -> ``db``; ``nvr.daemon`` -> ``daemon``; ``nvr`` -> ``base``."""
    parts = module.split(".")
    assert parts[0] == "nvr", module
    first = parts[1] if len(parts) > 1 else ""
    return ROOT_PACKAGE.get(first, first)


def modules(root: Path) -> Iterator[tuple[str, Path]]:
    """Every module under ``root/nvr`` with its dotted name."""
    for path in sorted((root / "nvr").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def imports(root: Path, module: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative ones resolved."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base.pop()
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                assert node.module is not None
                target = node.module
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                sub_path = root.joinpath(*sub.split("."))
                is_module = sub_path.with_suffix(".py").exists() or sub_path.is_dir()
                yield node.lineno, sub if target.startswith("nvr") and is_module else target


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(
    root: Path, layers: Mapping[str, frozenset[str]], libs: Mapping[str, Library]
) -> list[str]:
    """Every import in ``root/nvr`` that breaks the contract, one line each."""
    found: list[str] = []
    for module, path in modules(root):
        pkg = package_of(module)
        where = f"{path.relative_to(root)}"
        if pkg not in layers:
            found.append(f"{where}: package {pkg!r} is not in the layer diagram")
            continue
        for line, target in imports(root, module, path):
            top = target.split(".")[0]
            if top == "nvr":
                other = package_of(target)
                if other == pkg:
                    continue
                narrow = NARROWER.get(pkg, {}).get(other)
                if other not in layers[pkg]:
                    found.append(f"{where}:{line}: {pkg} may not import {other} ({target})")
                elif narrow is not None and not _within(target, narrow):
                    found.append(f"{where}:{line}: {pkg} may import only {narrow} of {other}")
            elif top in libs and not _within(module, libs[top].allowed):
                found.append(f"{where}:{line}: {top} is only for {libs[top].allowed}")
    return list(dict.fromkeys(found))  # one line per import statement


LAYERS = parse_layers(DESIGN.read_text())


def test_nvr_keeps_its_import_contract() -> None:
    assert violations(REPO, LAYERS, libraries(LAYERS)) == []


def test_the_diagram_reads_as_the_design_says() -> None:
    # Spot checks of the parse, so a reformatted diagram cannot silently allow everything.
    assert LAYERS["base"] == frozenset()
    assert {"base", "db", "storage", "codec"} <= LAYERS["ingest"]
    assert "mp4" not in LAYERS["ingest"] and "syncer" not in LAYERS["ingest"]
    assert "web" not in LAYERS["ops"] and "ops" in LAYERS["web"]
    assert "offline" in LAYERS["cli"] and "offline" not in LAYERS["web"]
    assert "testing" not in set().union(*LAYERS.values())
    assert LAYERS["cli"] >= set(LAYERS) - {"cli", "testing"}
    # Every package below ingest is trio-free (config and offline are by choice).
    assert LAYERS["ingest"] <= TRIO_FREE


def test_every_package_of_nvr_is_in_the_diagram() -> None:
    on_disk = {package_of(m) for m, _ in modules(REPO)}
    assert on_disk == set(LAYERS)


# The checker, on synthetic trees: it must be able to fail.

DIAGRAM = """## Layers and packages

```
base <- db <- {ingest, mp4} <- web    (comment <- ignored)
db <- codec <- {ingest, mp4}
```
"""


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in {"nvr/__init__.py": "", **files}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(tmp_path).parents:
            init = tmp_path / parent / "__init__.py"
            if parent.parts and not init.exists():
                init.write_text("")
        path.write_text(text)
    return tmp_path


def test_parse_layers_closes_the_diagram() -> None:
    layers = parse_layers(DIAGRAM)
    assert layers == {
        "base": frozenset(),
        "db": {"base"},
        "codec": {"base", "db"},
        "ingest": {"base", "db", "codec"},
        "mp4": {"base", "db", "codec"},
        "web": {"base", "db", "codec", "ingest", "mp4"},
    }


def test_parse_layers_refuses_a_cycle() -> None:
    with pytest.raises(AssertionError, match="cycle"):
        parse_layers("## Layers and packages\n\n```\na <- b\nb <- a\n```\n")


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("nvr/db/x.py", "from nvr.web.app import create_app\n", "db may not import web"),
        ("nvr/db/x.py", "import nvr.mp4.boxes\n", "db may not import mp4"),
        ("nvr/mp4/x.py", "from nvr.ingest import y\n", "mp4 may not import ingest"),
        ("nvr/mp4/x.py", "from ..ingest.y import z\n", "mp4 may not import ingest"),
        ("nvr/mp4/__init__.py", "from .. import web\n", "mp4 may not import web"),
        ("nvr/db/x.py", "def f():\n    from nvr import web\n", "db may not import web"),
        (
            "nvr/db/x.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import nvr.web\n",
            "db may not import web",
        ),
        ("nvr/codec/x.py", "from nvr.db.types import Row\n", "codec may import only"),
        ("nvr/db/x.py", "import trio\n", "trio is only for"),
        ("nvr/mp4/x.py", "from av import open\n", "av is only for"),
        ("nvr/extra/x.py", "", "package 'extra' is not in the layer diagram"),
    ],
)
def test_the_checker_finds_a_broken_contract(
    tmp_path: Path, path: str, source: str, expected: str
) -> None:
    stubs = {
        "nvr/web/app.py": "",
        "nvr/web/__init__.py": "",
        "nvr/ingest/y.py": "",
        "nvr/mp4/boxes.py": "",
        "nvr/db/types.py": "",
    }
    root = _tree(tmp_path, {**stubs, path: source})
    layers = parse_layers(DIAGRAM)
    found = violations(root, layers, libraries(layers))
    assert found, "the checker missed it"
    assert all(expected in line for line in found), found


def test_the_checker_accepts_what_the_diagram_allows(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "nvr/base/clock.py": "import trio\nimport time\n",
            "nvr/db/recording.py": "from nvr.base import clock\nfrom . import types\n",
            "nvr/db/types.py": "",
            "nvr/codec/h264.py": "from nvr.db.recording import Entry\n",
            "nvr/mp4/file.py": "from nvr.codec.h264 import parse\nfrom ..db.types import T\n",
            "nvr/web/app.py": "import quart\nimport trio\nfrom nvr.mp4 import file\n",
            "nvr/ingest/demuxer.py": "import av\nimport threading\n",
        },
    )
    layers = parse_layers(DIAGRAM)
    assert violations(root, layers, libraries(layers)) == []

"""Each stage's code `deps` in dvc.yaml are exactly the project modules its command imports.

DVC reruns a stage only when one of its `deps` changes, so a `stages/*.py` file that the
stage's module imports (directly, through another project module, or from inside a function)
but that is not listed means an edit there leaves a stale output; a listed file that is never
imported reruns the stage for nothing. The closure is found statically with `ast`, walking
every node of each module (function-level imports included), never by importing the code.
"""

from __future__ import annotations

import ast
import posixpath
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "stages"
PACKAGE_DIR = ROOT / PACKAGE
DVC_YAML = ROOT / "dvc.yaml"

# `python -m stages.x`, `python3 -u -m stages.x`, or `python stages/x.py`.
_MODULE_CMD = re.compile(r"\bpython[\w.]*\s+(?:-\S+\s+)*?-m\s+" + PACKAGE + r"\.(\w+)")
_SCRIPT_CMD = re.compile(r"\bpython[\w.]*\s+(?:-\S+\s+)*?(?:\./)?" + PACKAGE + r"/(\w+)\.py\b")
_CODE_DEP = re.compile("^" + PACKAGE + r"/[^/]+\.py$")
_INIT = f"{PACKAGE}/__init__.py"


def _module_file(name: str) -> str | None:
    """The repo-relative file of project module `stages.<name>`, or None if there is none."""
    if (PACKAGE_DIR / f"{name}.py").is_file():
        return f"{PACKAGE}/{name}.py"
    if (PACKAGE_DIR / name / "__init__.py").is_file():
        return f"{PACKAGE}/{name}/__init__.py"
    return None


def _direct_imports(file: str) -> dict[str, int]:
    """Project modules (as `stages/*.py` paths) that `file` imports, each with its first line.

    Every node of the tree is visited, so imports inside functions, methods, `if` blocks and
    `try` blocks count too. `import stages` alone and `stages/__init__.py` are not recorded.
    """
    path = ROOT / file
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    # The package `file` belongs to, for relative imports (`from . import x`).
    own_package = posixpath.dirname(file).replace("/", ".")
    found: dict[str, int] = {}

    def add(dotted: str, line: int) -> None:
        parts = dotted.split(".")
        if len(parts) < 2 or parts[0] != PACKAGE:
            return
        target = _module_file(parts[1])
        if target is not None and target != _INIT:
            found.setdefault(target, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = own_package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, node.module] if node.module else base_parts)
            else:
                base = node.module or ""
            if base == PACKAGE:
                # `from stages import a, b`: a and b are modules when such files exist.
                for alias in node.names:
                    add(f"{PACKAGE}.{alias.name}", node.lineno)
            else:
                add(base, node.lineno)
    return found


def _closure(root: str) -> dict[str, list[str]]:
    """Every project file `root` pulls in (itself included), each with the chain that does."""
    chains: dict[str, list[str]] = {root: [root]}
    queue = [root]
    while queue:
        current = queue.pop(0)
        for target, line in sorted(_direct_imports(current).items()):
            if target not in chains:
                chains[target] = [*chains[current][:-1], f"{current}:{line}", target]
                queue.append(target)
    return chains


def _stage_entries() -> list[tuple[str, dict]]:
    """(name, definition) for each stage; a `foreach` stage contributes its `do` block."""
    # Plain YAML: `${...}` stays text, and only the module name in `cmd` matters here.
    config = yaml.safe_load(DVC_YAML.read_text(encoding="utf-8")) or {}
    entries = []
    for name, stage in (config.get("stages") or {}).items():
        if "foreach" in stage:
            stage = stage.get("do") or {}
        entries.append((name, stage))
    return entries


def _cmd_roots(cmd: str | list[str] | None) -> list[str]:
    """The `stages/*.py` files whose code the command runs."""
    commands = cmd if isinstance(cmd, list) else [cmd or ""]
    roots = []
    for command in commands:
        text = " ".join(str(command).split())
        for name in [*_MODULE_CMD.findall(text), *_SCRIPT_CMD.findall(text)]:
            file = _module_file(name)
            assert file is not None, f"command runs {PACKAGE}.{name}, which does not exist"
            roots.append(file)
    return roots


def _listed_code_deps(deps: list | None) -> set[str]:
    listed = set()
    for dep in deps or []:
        if isinstance(dep, dict):  # not used by this project, but valid DVC syntax
            dep = next(iter(dep))
        path = posixpath.normpath(str(dep))
        if _CODE_DEP.match(path):
            listed.add(path)
    return listed


STAGES = _stage_entries()


def test_dvc_yaml_has_stages() -> None:
    assert STAGES, "dvc.yaml defines no stages"


@pytest.mark.parametrize(("name", "stage"), STAGES, ids=[name for name, _ in STAGES])
def test_code_deps_equal_import_closure(name: str, stage: dict) -> None:
    roots = _cmd_roots(stage.get("cmd"))
    chains: dict[str, list[str]] = {}
    for root in roots:
        for file, chain in _closure(root).items():
            chains.setdefault(file, chain)
    expected = set(chains)
    listed = _listed_code_deps(stage.get("deps"))
    if _INIT in listed:  # excluded unless listed; when listed, it is imported with the package
        expected.add(_INIT)
        chains.setdefault(_INIT, ["(imported with the package)"])

    missing = sorted(expected - listed)
    extra = sorted(listed - expected)
    lines = []
    if missing:
        lines.append(f"stage {name!r}: deps miss {len(missing)} imported file(s):")
        lines += [f"  {file}  (pulled in by {' -> '.join(chains[file])})" for file in missing]
    if extra:
        lines.append(
            f"stage {name!r}: deps list {len(extra)} file(s) the command never imports "
            f"(it runs {', '.join(roots) or 'no stages module'}):"
        )
        lines += [f"  {file}" for file in extra]
    assert not lines, "\n".join(lines)

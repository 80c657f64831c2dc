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
# The stage entry points and the library they call; both are the project's code.
ENTRY = "stages"
PACKAGES = ("stages", "dsprior")
DVC_YAML = ROOT / "dvc.yaml"

# `python -m stages.x`, `python3 -u -m stages.x`, or `python stages/x.py`.
_MODULE_CMD = re.compile(r"\bpython[\w.]*\s+(?:-\S+\s+)*?-m\s+" + ENTRY + r"\.(\w+)")
_SCRIPT_CMD = re.compile(r"\bpython[\w.]*\s+(?:-\S+\s+)*?(?:\./)?" + ENTRY + r"/(\w+)\.py\b")
_CODE_DEP = re.compile("^(?:" + "|".join(PACKAGES) + r")/(?:[^/]+/)*[^/]+\.py$")
# A top-level package's __init__.py holds only its docstring (test_top_level_inits_are_empty),
# so it is no dependency; a subpackage's __init__.py re-exports its modules and is one.
_TOP_INITS = {f"{package}/__init__.py" for package in PACKAGES}


def _module_file(dotted: str) -> str | None:
    """The repo-relative file of project module `dotted` (`dsprior.rawio.csv`), or None."""
    parts = dotted.split(".")
    if parts[0] not in PACKAGES:
        return None
    path = "/".join(parts)
    if (ROOT / f"{path}.py").is_file():
        return f"{path}.py"
    if (ROOT / path / "__init__.py").is_file():
        return f"{path}/__init__.py"
    return None


def _direct_imports(file: str) -> dict[str, int]:
    """Project modules (as repo-relative paths) that `file` imports, each with its first line.

    Every node of the tree is visited, so imports inside functions, methods, `if` blocks and
    `try` blocks count too. Importing `a.b.c` imports the packages `a.b` and `a` too: their
    `__init__.py` files count, except the top-level ones.
    """
    path = ROOT / file
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    # The package `file` belongs to, for relative imports (`from . import x`).
    own_package = posixpath.dirname(file).replace("/", ".")
    found: dict[str, int] = {}

    def add(dotted: str, line: int) -> None:
        parts = dotted.split(".")
        for depth in range(2, len(parts) + 1):  # the enclosing packages, then the module
            target = _module_file(".".join(parts[:depth]))
            if target is not None and target not in _TOP_INITS and target != file:
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
            add(base, node.lineno)
            # `from dsprior import a, b`: a and b are modules when such files exist.
            for alias in node.names:
                if _module_file(f"{base}.{alias.name}") is not None:
                    add(f"{base}.{alias.name}", node.lineno)
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
            file = _module_file(f"{ENTRY}.{name}")
            assert file is not None, f"command runs {ENTRY}.{name}, which does not exist"
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

    missing = sorted(expected - listed)
    extra = sorted(listed - expected)
    lines = []
    if missing:
        lines.append(f"stage {name!r}: deps miss {len(missing)} imported file(s):")
        lines += [f"  {file}  (pulled in by {' -> '.join(chains[file])})" for file in missing]
    if extra:
        lines.append(
            f"stage {name!r}: deps list {len(extra)} file(s) the command never imports "
            f"(it runs {', '.join(roots) or 'no entry point'}):"
        )
        lines += [f"  {file}" for file in extra]
    assert not lines, "\n".join(lines)


@pytest.mark.parametrize("package", PACKAGES)
def test_top_level_inits_are_empty(package: str) -> None:
    """A top-level `__init__.py` is no stage dependency, so it may hold nothing but a docstring."""
    tree = ast.parse((ROOT / package / "__init__.py").read_text(encoding="utf-8"))
    body = [
        n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
    ]
    assert not body, f"{package}/__init__.py runs code; move it into a module"


def _resolved(text: str) -> str:
    """``${paths.x}`` filled in from params.yaml; other interpolations left as they are."""
    paths = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["paths"]
    return posixpath.normpath(re.sub(r"\$\{paths\.(\w+)\}", lambda m: str(paths[m.group(1)]), text))


def _entries(block: list | None) -> list[str]:
    return [_resolved(str(next(iter(e)) if isinstance(e, dict) else e)) for e in block or []]


def test_stages_are_listed_in_pipeline_order() -> None:
    """Each stage comes after every stage whose outputs it reads, so dvc.yaml reads top down."""
    produced: dict[str, str] = {}
    for name, stage in STAGES:
        for kind in ("outs", "metrics", "plots"):
            for path in _entries(stage.get(kind)):
                produced[path] = name
    seen: set[str] = set()
    late = []
    for name, stage in STAGES:
        for dep in _entries(stage.get("deps")):
            producer = next(
                (p for out, p in produced.items() if dep == out or dep.startswith(out + "/")),
                None,
            )
            if producer is not None and producer != name and producer not in seen:
                late.append(f"{name} reads {dep}, which {producer} (listed later) writes")
        seen.add(name)
    assert not late, "\n".join(late)

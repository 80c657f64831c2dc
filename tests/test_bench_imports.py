"""Every name the benchmark scripts import exists, those imported inside functions included
(a refactor moved one and a benchmark broke only when it was next run)."""

from __future__ import annotations

import ast
import importlib

import pytest

from tools.scratch import ROOT

SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def imported_names(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield node.module, alias.name


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_imported_name_exists(script):
    project = ("dsprior", "stages", "tools", "tests", "benchmarks")
    missing = []
    for module, name in imported_names(script):
        if not module.startswith(project):
            continue
        imported = importlib.import_module(module)
        if not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"from {module} import {name}")
    assert missing == [], f"{script.name}: {missing}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_benchmark_starts_as_the_docs_run_it(script, tmp_path):
    """``python benchmarks/<script>.py --help`` from elsewhere: its imports resolve when it
    runs as a script (bench_monitor's import of tests/ did not)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(script), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]

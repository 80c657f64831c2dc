"""The documentation a clone holds: every citation of the methods page resolves inside the repo.

Code comments cite ``docs/methods.md, section N``; a renumbered or missing section, or a
citation of a notes file that only the developers' machines have, would send a reader
nowhere.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools import docs_figures

ROOT = Path(__file__).resolve().parent.parent
METHODS = ROOT / "docs" / "methods.md"
# "docs/methods.md, section 12", "docs/methods.md section 12", "sections 3 and 5".
_CITATION = re.compile(r"docs/methods\.md,?\s+sections?\s+(\d+)(?:\s+and\s+(\d+))?")
_SECTION = re.compile(r"^## (\d+)\. \S", re.MULTILINE)


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "*.py", "*.md", "*.yaml", "*.toml", "Makefile"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def build_site(site: Path) -> None:
    """``mkdocs build --strict`` into ``site``; its warnings, as errors, fail the test."""
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr


def methods_sections() -> set[int]:
    """The numbers of the methods page's sections, which must run 1, 2, ... without a gap."""
    numbers = [int(n) for n in _SECTION.findall(METHODS.read_text(encoding="utf-8"))]
    assert numbers == list(range(1, len(numbers) + 1)), f"sections are numbered {numbers}"
    return set(numbers)


def citations(text: str) -> list[int]:
    """The section numbers that ``text`` cites on the methods page."""
    return [int(n) for match in _CITATION.finditer(text) for n in match.groups() if n]


def test_citation_pattern_reads_both_forms() -> None:
    assert citations("see docs/methods.md, sections 3 and 5: and docs/methods.md section 12") == [
        3,
        5,
        12,
    ]


def test_every_methods_citation_names_an_existing_section() -> None:
    sections = methods_sections()
    cited = {
        str(path.relative_to(ROOT)): citations(path.read_text(encoding="utf-8", errors="replace"))
        for path in _tracked_text_files()
    }
    dangling = {path: n for path, numbers in cited.items() for n in numbers if n not in sections}
    assert not dangling, f"citations of missing methods sections: {dangling}"
    # The library's math cites the page; if nothing did, the pattern above would be wrong.
    assert sum(len(numbers) for numbers in cited.values()) >= 5


def test_no_file_points_outside_the_repository_for_its_methods() -> None:
    # A clone has no ../shared folder and no METHODS.md: the methods live in docs/methods.md.
    stale = [
        str(path.relative_to(ROOT))
        for path in _tracked_text_files()
        if path.name != "test_docs.py"
        and re.search(
            r"\.\./shared|METHODS\.md", path.read_text(encoding="utf-8", errors="replace")
        )
    ]
    assert not stale, f"files that cite a methods file a clone lacks: {stale}"


def test_docs_site_builds_without_warnings(tmp_path: Path) -> None:
    # mkdocs.yml is strict: a broken link, a missing anchor or a page left out of the nav fails.
    build_site(tmp_path)
    assert (tmp_path / "methods" / "index.html").is_file()
    # the home page's figures are the committed run's, rendered at build time
    metrics = json.loads((ROOT / "reports" / "metrics.json").read_text())
    home = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert f"{metrics['test']['shipped']['prior']['precision']:.3f}" in home
    assert "{{" not in home


def _results(tmp_path: Path) -> Path:
    (tmp_path / "results.json").write_text(
        json.dumps(
            {
                "command": "python bench.py --quick",
                "date": "2026-12-07 01:45",
                "machine": {"cpu": "AMD EPYC", "cores": 2},
                "speeds": {"padded": 123.456, "runs": [10, 20]},
                "share": 0.9412,
            }
        )
    )
    return tmp_path


def test_figures_are_read_from_the_results_file_and_formatted(tmp_path: Path) -> None:
    root = _results(tmp_path)
    text = (
        "{{ fig | results.json | speeds/padded | .1f }} examples/s, second run "
        "{{ fig | results.json | speeds/runs/1 }}, {{fig|results.json|share|.1%}} covered. "
        "{{ source | results.json }}"
    )
    assert docs_figures.render(text, root=root) == (
        "123.5 examples/s, second run 20, 94.1% covered. Measured with "
        "`python bench.py --quick` on AMD EPYC, 2 cores, 2026-12-07 01:45."
    )


def test_a_prior_is_written_as_the_n_of_one_to_n(tmp_path: Path) -> None:
    (tmp_path / "prior.json").write_text(json.dumps({"prior": 0.0113929, "rare": 0.000999}))
    text = "1:{{ fig | prior.json | prior | odds }} and 1:{{ fig | prior.json | rare | odds }}"
    assert docs_figures.render(text, root=tmp_path) == "1:87 and 1:1,000"
    assert docs_figures.readme_mismatches(
        "at 1:87<!-- fig | prior.json | prior | odds --> and 1:99<!-- fig | prior.json | rare | odds -->",
        root=tmp_path,
    ) == ["prior.json: rare is 1,000, the text says 99"]


def test_a_figure_can_change_its_unit_before_the_format(tmp_path: Path) -> None:
    (tmp_path / "disk.json").write_text(json.dumps({"bytes": 218708869066, "s_per_ex": 0.0344}))
    text = (
        "{{ fig | disk.json | bytes | /1e9 .1f }} GB, "
        "{{ fig | disk.json | s_per_ex | *1000 .2f }} s per 1,000, "
        "{{ fig | disk.json | bytes | /3600 ,.0f }} h"
    )
    assert docs_figures.render(text, root=tmp_path) == "218.7 GB, 34.40 s per 1,000, 60,752,464 h"


def test_a_figure_can_come_from_a_dvclive_curve(tmp_path: Path) -> None:
    """A DVCLive ``.tsv`` curve reads as a list of rows: ``-1/step`` is its last step."""
    (tmp_path / "loss.tsv").write_text("step\tloss\n0\t0.7\n10\t0.5\n514\t0.25\n")
    text = (
        "{{ fig | loss.tsv | -1/step | d }} steps, last loss {{ fig | loss.tsv | -1/loss | .2f }}"
    )
    assert docs_figures.render(text, root=tmp_path) == "514 steps, last loss 0.25"
    (tmp_path / "bad.tsv").write_text("step\tloss\n0\tnan-ish\n")
    with pytest.raises(docs_figures.FigureError, match="bad.tsv: not a table of numbers"):
        docs_figures.render("{{ fig | bad.tsv | 0/loss }}", root=tmp_path)


@pytest.mark.parametrize(
    ("placeholder", "message"),
    [
        ("{{ fig | missing.json | a }}", "missing.json: no such results file"),
        ("{{ fig | results.json | speeds/slow }}", "no key 'speeds/slow'"),
        ("{{ fig | results.json | speeds/runs/2 }}", "speeds/runs/2 is past the list's end"),
        ("{{ fig | results.json | speeds }}", "speeds is a dict, not a figure"),
        ("{{ fig | results.json | machine/cpu | .2f }}", "does not format as '.2f'"),
        ("{{ fig | results.json | speeds/padded | odds }}", "is not a prior in (0, 1)"),
        ("{{ fig | results.json | machine/cpu | /1e6 .1f }}", "is not a number to scale by"),
    ],
)
def test_a_figure_that_is_not_there_fails_by_name(
    tmp_path: Path, placeholder: str, message: str
) -> None:
    with pytest.raises(docs_figures.FigureError, match=re.escape(message)):
        docs_figures.render(placeholder, root=_results(tmp_path))


def test_a_results_file_without_its_command_has_no_provenance(tmp_path: Path) -> None:
    (tmp_path / "bare.json").write_text(json.dumps({"machine": {"cpu": "x"}}))
    with pytest.raises(docs_figures.FigureError, match="no key 'command'"):
        docs_figures.render("{{ source | bare.json }}", root=tmp_path)


def test_readme_figures_match_their_results_files() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert docs_figures.MARKED.search(text), "the README marks no figure"
    assert docs_figures.readme_mismatches(text) == []


def test_a_stale_readme_figure_is_named(tmp_path: Path) -> None:
    text = (
        "precision 123.5<!-- fig | results.json | speeds/padded | .1f --> and "
        "0.95<!-- fig | results.json | share | .3f -->"
    )
    assert docs_figures.readme_mismatches(text, root=_results(tmp_path)) == [
        "results.json: share is 0.941, the text says 0.95"
    ]


def _keys(value: object) -> set[str]:
    """Every key name in a parsed JSON record, nested ones too."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_the_key_reference_names_every_key_the_committed_run_wrote(tmp_path: Path) -> None:
    build_site(tmp_path)
    page = (tmp_path / "reference" / "metrics" / "index.html").read_text(encoding="utf-8")
    documented = set(re.findall(r"<td><code>([^<]+)</code></td>", page))
    metrics = json.loads((ROOT / "reports" / "metrics.json").read_text())
    # keys of open mappings are names (splits, batches, checks), not fields
    named = {"dev_a", "dev_b", "test"} | set(metrics["tied_scores"])
    named |= set(metrics["label_free"]) | set(metrics["label_free_true_shift"])
    named |= set(metrics["label_free_checks"]["intervals"])
    missing = _keys(metrics) - documented - named
    assert not missing, f"metrics.json keys missing from docs/reference/metrics.md: {missing}"


def test_a_record_placeholder_names_a_declaration_that_exists() -> None:
    with pytest.raises(docs_figures.FigureError, match="dsprior.nowhere.Shape: no such record"):
        docs_figures.render("{{ record | dsprior.nowhere.Shape }}")
    table = docs_figures.render("{{ record | dsprior.scoring.record.ScoreSummaryRecord }}")
    assert "| `estimated_prior` |" in table and "](#priorestimate)" in table


@pytest.mark.parametrize(
    ("record", "text"),
    [
        ({"machine": "AMD EPYC, 2 CPUs"}, "AMD EPYC, 2 CPUs"),
        (
            {"cpu": {"model": "EPYC", "cores": 2, "flags": ["avx2", "avx512_bf16"]}},
            "EPYC, 2 cores (avx512_bf16)",
        ),
        ({"machine": {"cpu_model": "Xeon", "cpus": 16}}, "Xeon, 16 cores"),
        (
            {"machine": {"cpus": 2, "platform": "Linux"}},
            "a CPU whose model the file does not record, 2 cores",
        ),
        ({}, "a machine the file does not describe"),
    ],
)
def test_the_machine_is_read_from_every_shape_the_benchmarks_wrote(record: dict, text: str) -> None:
    assert docs_figures.machine_text(record) == text


def test_a_file_from_before_commands_were_recorded_names_its_script() -> None:
    line = docs_figures.provenance("benchmarks/results/ingest.json")
    assert line.startswith("Measured with `python benchmarks/bench_ingest.py` on ")
    assert ", committed 20" in line or "not yet committed" in line


def test_a_number_typed_into_a_table_of_figures_is_named() -> None:
    fig = "{{ fig | results.json | share | .3f }}"
    text = "\n".join(
        [
            "| run | share | note |",
            "|---|---|---|",
            f"| 1:100 | {fig} | fine |",
            f"| 1:30 | 0.95 | {fig} s, best of 3 |",
            "",
            "<!-- typed cells: the targets are not measured -->",
            "",
            "| what | measured | target |",
            "|---|---|---|",
            f"| speed | {fig} | at least 2x |",
            "",
            "| typed, no figures | 0.5 |",
            "|---|---|",
            "| a | 0.7 |",
        ]
    )
    assert docs_figures.typed_numbers_in_tables(text) == [(4, "0.95"), (4, "s, best of 3")]


def test_no_table_of_figures_holds_a_typed_number() -> None:
    # a table that reads one figure from a file reads them all; a typed target or param
    # beside them is declared on the line before the table (``<!-- typed cells: why -->``)
    typed = [
        f"{path.relative_to(ROOT)}:{line}: {cell}"
        for path in sorted((ROOT / "docs").rglob("*.md"))
        for line, cell in docs_figures.typed_numbers_in_tables(path.read_text(encoding="utf-8"))
    ]
    assert not typed, f"numbers typed into tables of figures: {typed}"


def test_lines_of_a_kept_report_are_read_from_its_results_file(tmp_path: Path) -> None:
    (tmp_path / "monitor.json").write_text(json.dumps({"report": ["# Title", "", "a", "b"]}))
    text = "{{ lines | monitor.json | report | 2-3 }}\n{{ lines | monitor.json | report | 0-0 }}"
    assert docs_figures.render(text, root=tmp_path) == "a\nb\n# Title"
    for placeholder, message in (
        ("{{ lines | monitor.json | report | 2-4 }}", "report has lines 0-3, not 2-4"),
        ("{{ lines | monitor.json | report | 3-2 }}", "report has lines 0-3, not 3-2"),
    ):
        with pytest.raises(docs_figures.FigureError, match=re.escape(message)):
            docs_figures.render(placeholder, root=tmp_path)
    (tmp_path / "n.json").write_text(json.dumps({"report": [1, 2]}))
    with pytest.raises(docs_figures.FigureError, match="not a list of text lines"):
        docs_figures.render("{{ lines | n.json | report | 0-1 }}", root=tmp_path)

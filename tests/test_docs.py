"""The documentation a clone holds: every citation of the methods page resolves inside the repo.

Code comments cite ``docs/methods.md, section N``; a renumbered or missing section, or a
citation of a notes file that only the developers' machines have, would send a reader
nowhere.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "methods" / "index.html").is_file()

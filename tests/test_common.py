"""common: atomic folders follow the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from stages import common


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process umask after a test that sets it."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("mask", "expected"),
    [(0o022, 0o755), (0o027, 0o750), (0o077, 0o700)],
    ids=["022", "027", "077"],
)
def test_atomic_directory_follows_the_umask(
    tmp_path: Path, umask: None, mask: int, expected: int
) -> None:
    """Not mkdtemp's owner-only 0o700: a teammate or a scoring service must read bundle/ etc."""
    os.umask(mask)
    assert common.current_umask() == mask
    assert os.umask(mask) == mask  # reading it did not change it
    with common.atomic_directory(tmp_path / "bundle") as tmp:
        (tmp / "bundle.json").write_text("{}")
    assert mode(tmp_path / "bundle") == expected
    assert mode(tmp_path / "bundle" / "bundle.json") == expected & 0o666

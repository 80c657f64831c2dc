"""dsprior.scoring.output: the format by extension; a failed rename leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsprior import scoring
from dsprior.bundle import Bundle
from dsprior.scoring import output
from tests.factories import one_file


def test_output_format_by_extension() -> None:
    assert scoring.output_format("a/b.PARQUET") == "parquet"
    assert scoring.output_format("b.csv.gz") == "csv"
    with pytest.raises(ValueError, match=r"extension must be one of .*'\.csv'"):
        scoring.output_format("b.json")


@pytest.mark.parametrize("out", ["scores.csv", "scores.parquet"])
def test_a_failed_rename_leaves_no_temporary(
    loaded: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: str
) -> None:
    path = one_file(tmp_path)

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        scoring.score_file(loaded, path, tmp_path / out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.csv"]

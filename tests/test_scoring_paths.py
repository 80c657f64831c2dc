"""dsprior.scoring.paths: outputs never overwrite the input or each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsprior import scoring
from dsprior.bundle import Bundle
from tests.factories import one_file


def test_score_file_refuses_the_input_as_output(loaded: Bundle, tmp_path: Path) -> None:
    new = one_file(tmp_path)
    raw = new.read_bytes()
    with pytest.raises(ValueError, match="output_path .* and input_path .* are the same file"):
        scoring.score_file(loaded, new, new)
    with pytest.raises(ValueError, match="rejects_path .* and output_path .* are the same file"):
        scoring.score_file(loaded, new, tmp_path / "o.csv", rejects_path=tmp_path / "o.csv")
    assert new.read_bytes() == raw and not (tmp_path / "o.csv").exists()

"""dsprior.scoring.report: the Markdown beside the summary's JSON, and where it goes."""

from __future__ import annotations

from pathlib import Path

from dsprior.scoring import render_summary, summary_markdown_path


def test_an_empty_batch_renders_its_warning() -> None:
    text = render_summary(
        {
            "examples": 0,
            "bundle_prior": 0.01,
            "estimated_prior": None,
            "warnings": ["the batch is empty: nothing to estimate"],
        }
    )
    assert text == (
        "# Batch summary, without labels\n\n"
        "- Examples: 0; the bundle's prior: 0.0100.\n\n"
        "- Warning: the batch is empty: nothing to estimate\n"
    )


def test_the_markdown_sits_beside_the_json() -> None:
    assert summary_markdown_path("out/s.json") == Path("out/s.md")
    assert summary_markdown_path("out/s.JSON") == Path("out/s.md")
    assert summary_markdown_path("out/summary") == Path("out/summary.md")

"""rawio.sources: a source's declaration is validated key by key, and its files listed in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsprior.rawio import SIMULATED, SourceSpec, file_bytes, infer_format, list_files

GENERATE = {"sources": {"pool": {"examples": 10, "negative_rate": 0.2}}}


def test_source_spec_validation_names_the_full_key_and_the_bad_value() -> None:
    def refused(params: dict) -> str:
        with pytest.raises(ValueError) as info:
            SourceSpec.from_params("s", {"path": "x", "negative_rate": 1.0, **params})
        return str(info.value)

    assert refused({"format": "xls"}) == (
        "ingest.sources.s.format must be one of ['csv', 'parquet', 'jsonl', 'simulated'], got 'xls'"
    )
    assert refused({"negative_rate": 0}) == (
        "ingest.sources.s.negative_rate must be a number > 0 and <= 1, got 0"
    )
    assert "ingest.sources.s.columns: with header: false" in refused({"header": False})
    assert refused({"colums": {}}).startswith(
        "ingest.sources.s.colums: unknown key (value {}); allowed keys in ingest.sources.s are"
    )
    assert "did you mean 'columns'?" in refused({"colums": {}})
    assert refused({"columns": {"label": -1}}) == (
        "ingest.sources.s.columns.label must be a column name or a 0-based position, got -1"
    )
    assert refused({"columns": {"lable": "y"}}).startswith(
        "ingest.sources.s.columns.lable: unknown name"
    )


def test_a_simulated_source_must_match_the_simulator() -> None:
    def refused(params: dict, simulation: dict | None = GENERATE) -> str:
        with pytest.raises(ValueError) as info:
            SourceSpec.from_params(
                "pool",
                {"path": "dsprior/simulator.py", "format": SIMULATED, **params},
                simulation=simulation,
            )
        return str(info.value)

    assert refused({"negative_rate": 0.5}) == (
        "ingest.sources.pool.negative_rate is 0.5 but the simulator thins this source with "
        "generate.sources.pool.negative_rate = 0.2; make them equal"
    )
    assert refused({"negative_rate": 0.2}, simulation=None) == (
        "ingest.sources.pool: format: simulated, but generate.sources has no source 'pool' "
        "(it has []); the simulator draws only the sources it declares"
    )
    assert refused({"negative_rate": 0.2, "header": False}).startswith(
        "ingest.sources.pool.header: unknown key"
    )
    spec = SourceSpec.from_params(
        "pool",
        {"path": "dsprior/simulator.py", "format": SIMULATED, "negative_rate": 0.2},
        simulation=GENERATE,
    )
    assert (spec.format, spec.negative_rate, spec.simulation) == (SIMULATED, 0.2, GENERATE)


def test_files_are_listed_sorted_with_their_formats_and_hidden_files_ignored(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "raw"
    (folder / "sub").mkdir(parents=True)
    (folder / ".cache").mkdir()
    for name in ["b.csv.gz", "a.PARQUET", "sub/c.ndjson", ".hidden.csv", ".cache/d.csv"]:
        (folder / name).write_bytes(b"x" * len(name))
    spec = SourceSpec.from_params("s", {"path": str(folder), "negative_rate": 1.0})
    files = list_files(spec)
    assert [(p.relative_to(folder).as_posix(), fmt) for p, fmt in files] == [
        ("a.PARQUET", "parquet"),
        ("b.csv.gz", "csv"),
        ("sub/c.ndjson", "jsonl"),
    ]
    assert [file_bytes(p, fmt) for p, fmt in files] == [9, 8, 12]
    assert file_bytes(Path("simulator/pool/part-000"), SIMULATED) == 0
    one = SourceSpec.from_params("s", {"path": str(folder / "b.csv.gz"), "negative_rate": 1.0})
    assert list_files(one) == [(folder / "b.csv.gz", "csv")]


def test_a_format_given_applies_to_every_file(tmp_path: Path) -> None:
    (tmp_path / "export.txt").write_text("x")
    spec = SourceSpec.from_params(
        "s", {"path": str(tmp_path), "negative_rate": 1.0, "format": "csv"}
    )
    assert list_files(spec) == [(tmp_path / "export.txt", "csv")]
    assert infer_format(tmp_path / "export.txt") is None
    assert infer_format(Path("x.tsv.gz")) == "csv" and infer_format(Path("x.pq")) == "parquet"


def test_what_cannot_be_listed_is_an_error_naming_the_source(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    spec = SourceSpec.from_params("s", {"path": str(tmp_path), "negative_rate": 1.0})
    with pytest.raises(ValueError, match=r"source 's': cannot infer the format of .*notes.txt"):
        list_files(spec)
    missing = SourceSpec.from_params("s", {"path": str(tmp_path / "nowhere"), "negative_rate": 1.0})
    with pytest.raises(FileNotFoundError, match=r"source 's': .*nowhere does not exist"):
        list_files(missing)
    (tmp_path / "empty").mkdir()
    empty = SourceSpec.from_params("s", {"path": str(tmp_path / "empty"), "negative_rate": 1.0})
    with pytest.raises(FileNotFoundError, match=r"source 's': no files under .*empty"):
        list_files(empty)
    simulated = SourceSpec.from_params(
        "pool",
        {"path": "dsprior/simulator.py", "format": SIMULATED, "negative_rate": 0.2},
        simulation=GENERATE,
    )
    with pytest.raises(ValueError, match="source 'pool' is simulated: list its parts"):
        list_files(simulated)

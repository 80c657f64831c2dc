"""One validation idiom for every stage's params section (issue 14): typos do not pass silently.

Each stage declares its section as a schema (``dsprior.settings.check_section``); unknown keys at
any depth, missing keys, wrong types and out-of-range values end in one ValueError naming the
full key path, the value and what is allowed, before any work.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from dsprior import audit, downsampling, generation, monitoring, settings, simulator, splitting
from dsprior.evaluation.config import check_params as check_evaluate_params
from dsprior.ingest import IngestConfig
from stages import split, train
from tests.conftest import ROOT, TINY_PARAMS, deep_merge

REAL = yaml.safe_load((ROOT / "params.yaml").read_text())


def section(name: str, override: dict[str, Any] | None = None) -> dict[str, Any]:
    """The real params.yaml section ``name`` with ``override`` merged in (nested)."""
    return deep_merge(REAL[name], override or {})


def without(params: dict[str, Any], *path: str) -> dict[str, Any]:
    out = copy.deepcopy(params)
    node = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


def refuse(check, params: dict[str, Any]) -> str:
    with pytest.raises(ValueError) as err:
        check(params)
    return str(err.value)


# ----------------------------------------------------------------------------- the validator

SCHEMA = {
    "seed": settings.Integer(minimum=0),
    "ratio": settings.Number(minimum=0, min_open=True, none=True),
    "mode": settings.Choice("fast", "slow"),
    "names": settings.ListOf(settings.Text()),
    "inner": settings.Section({"level": settings.Number(minimum=0, maximum=1)}),
    "sources": settings.MapOf(
        settings.Section({"rate": settings.Number(), "format": settings.Optional(settings.Text())})
    ),
}
GOOD = {
    "seed": 1,
    "ratio": None,
    "mode": "fast",
    "names": ["a"],
    "inner": {"level": 0.5},
    "sources": {"a": {"rate": 1.0}, "b": {"rate": 0.5, "format": "csv"}},
}


def check(params):
    return settings.check_section(params, SCHEMA, "demo")


def test_a_valid_section_passes_and_optional_keys_may_be_left_out():
    assert check(GOOD) == GOOD


def test_unknown_key_names_path_allowed_keys_and_a_close_one():
    msg = refuse(check, {**GOOD, "sead": 1})
    assert msg.startswith("demo.sead: unknown key")
    assert "allowed keys in demo are ['seed', 'ratio', 'mode', 'names', 'inner', 'sources']" in msg
    assert "did you mean 'seed'?" in msg
    assert "did you mean" not in refuse(check, {**GOOD, "zzzzz": 1})


def test_unknown_key_at_depth_inside_a_free_named_map():
    params = deep_merge(GOOD, {"sources": {"b": {"fromat": "csv"}}})
    msg = refuse(check, params)
    assert "demo.sources.b.fromat: unknown key" in msg and "did you mean 'format'?" in msg


def test_missing_key_is_required():
    assert refuse(check, without(GOOD, "inner", "level")) == (
        "demo.inner.level is required; add it to params.yaml"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"seed": True}, "demo.seed must be an integer >= 0, got True"),  # bool is no number
        ({"seed": 1.5}, "demo.seed must be an integer >= 0, got 1.5"),
        ({"ratio": "two"}, "demo.ratio must be null or a number > 0, got 'two'"),
        ({"mode": "fats"}, "demo.mode must be one of ['fast', 'slow'], got 'fats'"),
        ({"names": "a"}, "demo.names must be a list, got 'a'"),
        ({"names": ["a", 3]}, "demo.names[1] must be a non-empty string, got 3"),
        ({"names": ["a", ""]}, "demo.names[1] must be a non-empty string, got ''"),
        (
            {"sources": {"a": {"rate": 1.0, "format": ""}}},
            "demo.sources.a.format must be a non-empty string, got ''",
        ),
        ({"sources": {"": {"rate": 1.0}}}, "demo.sources: names must be non-empty strings, got ''"),
        ({"inner": 3}, "demo.inner must be a mapping with keys ['level'], got 3"),
        ({"sources": {}}, "demo.sources must be a mapping of at least 1 name(s)"),
    ],
)
def test_wrong_type_names_path_value_and_what_is_allowed(override, message):
    assert message in refuse(check, {**GOOD, **override})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"seed": -1}, "demo.seed must be an integer >= 0, got -1"),
        ({"ratio": 0}, "demo.ratio must be null or a number > 0, got 0"),
        ({"inner": {"level": 1.5}}, "demo.inner.level must be a number >= 0 and <= 1, got 1.5"),
        ({"inner": {"level": float("nan")}}, "demo.inner.level must be a number"),
    ],
)
def test_out_of_range_names_path_value_and_range(override, message):
    assert message in refuse(check, {**GOOD, **override})


def test_a_typo_is_reported_before_the_key_it_leaves_missing():
    params = {**without(GOOD, "ratio"), "ration": 2}
    assert "demo.ration: unknown key" in refuse(check, params)


def test_an_empty_or_null_section_reports_the_first_missing_key():
    assert refuse(check, None) == "demo.seed is required; add it to params.yaml"


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_misspelt_cost_is_refused():
    params = section("evaluate")
    del params["cost"]["false_negative"]
    params["cost"]["false_negatve"] = 5
    msg = refuse(check_evaluate_params, params)
    assert msg.startswith("evaluate.cost.false_negatve: unknown key (value 5)")
    assert "['false_positive', 'false_negative']" in msg
    assert "did you mean 'false_negative'?" in msg


def test_evaluate_misspelt_bootstrap_key_is_refused():
    params = section("evaluate", {"bootstrap": {"resample": 10}})
    msg = refuse(check_evaluate_params, params)
    assert "evaluate.bootstrap.resample: unknown key" in msg
    assert "did you mean 'resamples'?" in msg


def test_evaluate_missing_key_wrong_type_and_range():
    assert refuse(
        check_evaluate_params, without(section("evaluate"), "cost", "false_negative")
    ) == ("evaluate.cost.false_negative is required; add it to params.yaml")
    msg = refuse(check_evaluate_params, section("evaluate", {"calibration_bins": "10"}))
    assert msg == "evaluate.calibration_bins must be an integer >= 1, got '10'"
    msg = refuse(check_evaluate_params, section("evaluate", {"prior": 0}))
    assert msg == "evaluate.prior must be null or a number > 0 and < 1, got 0"


def test_evaluate_uses_the_costs_given():
    config = check_evaluate_params(section("evaluate", {"cost": {"false_negative": 5}}))
    assert config.cost.false_negative == 5.0


# ----------------------------------------------------------------------------- split


def test_split_misspelt_assign_is_refused():
    params = {**without(section("split"), "assign"), "assgin": "quota"}
    msg = refuse(splitting.check_params, params)
    assert msg.startswith("split.assgin: unknown key (value 'quota')")
    assert "did you mean 'assign'?" in msg


def test_split_feed_is_a_clear_error_not_a_key_error():
    params = section("split")
    params["feed"] = params.pop("feeds")
    msg = refuse(splitting.check_params, params)
    assert msg.startswith("split.feed: unknown key")
    assert "allowed keys in split are ['seed', 'by', 'assign', 'feeds', 'priority']" in msg
    assert "did you mean 'feeds'?" in msg


def test_split_feeds_are_checked_at_depth():
    msg = refuse(splitting.check_params, section("split", {"feeds": {"pool": {"trian": 0.5}}}))
    assert "split.feeds.pool.trian: unknown name" in msg and "did you mean 'train'?" in msg
    msg = refuse(splitting.check_params, section("split", {"feeds": {"pool": {"train": True}}}))
    assert msg == "split.feeds.pool.train must be a number >= 0 and <= 1, got True"
    msg = refuse(splitting.check_params, section("split", {"feeds": {"pool": {"train": 0.9}}}))
    assert "split.feeds.pool: fractions must sum to at most 1" in msg


def test_split_missing_key_wrong_type_and_choice():
    assert refuse(splitting.check_params, without(section("split"), "priority")) == (
        "split.priority is required; add it to params.yaml"
    )
    assert refuse(splitting.check_params, section("split", {"priority": "pool"})) == (
        "split.priority must be null or a list, got 'pool'"
    )
    msg = refuse(splitting.check_params, section("split", {"by": "groups"}))
    assert (
        msg == "split.by must be one of ['group', 'example'], got 'groups'; did you mean 'group'?"
    )
    assert splitting.check_params(section("split", {"priority": None})).priority is None


def test_split_main_refuses_before_reading_data(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"split": {**section("split"), "assgin": "hash"}}))
    args = ["--params", str(path), "--dataset", str(tmp_path / "nowhere")]
    with pytest.raises(ValueError, match="split.assgin: unknown key"):
        split.main([*args, "--out", str(tmp_path / "m"), "--metrics", str(tmp_path / "j")])


# ----------------------------------------------------------------------------- downsample


def test_downsample_ration_is_refused():
    params = {**without(section("downsample"), "ratio"), "ration": 2}
    msg = refuse(downsampling.check_params, params)
    assert msg.startswith("downsample.ration: unknown key (value 2)")
    assert "allowed keys in downsample are ['seed', 'ratio', 'splits']" in msg
    assert "did you mean 'ratio'?" in msg


def test_downsample_split_is_refused():
    params = section("downsample")
    params["split"] = params.pop("splits")
    msg = refuse(downsampling.check_params, params)
    assert msg.startswith("downsample.split: unknown key")
    assert "did you mean 'splits'?" in msg


def test_downsample_missing_key_wrong_type_and_range():
    assert refuse(downsampling.check_params, without(section("downsample"), "splits")) == (
        "downsample.splits is required; add it to params.yaml"
    )
    msg = refuse(downsampling.check_params, section("downsample", {"splits": ["train", "dev"]}))
    assert msg.startswith("downsample.splits[1] must be one of ['train', 'dev_a', 'dev_b', 'test']")
    assert refuse(downsampling.check_params, section("downsample", {"ratio": 0})) == (
        "downsample.ratio must be null or a number > 0, got 0"
    )
    assert downsampling.check_params(section("downsample", {"ratio": None})).ratio is None


# ----------------------------------------------------------------------------- generate


def test_generate_dimm_is_refused():
    msg = refuse(simulator.check_params, section("generate", {"dimm": 12}))
    assert msg.startswith("generate.dimm: unknown key (value 12)")
    assert "did you mean 'dim'?" in msg


def test_generate_source_keys_are_checked_at_depth():
    params = section("generate", {"sources": {"pool": {"negative_rat": 0.1}}})
    msg = refuse(simulator.check_params, params)
    assert "generate.sources.pool.negative_rat: unknown key" in msg
    assert "did you mean 'negative_rate'?" in msg
    params = section("generate")
    del params["sources"]["production"]["examples"]
    assert refuse(simulator.check_params, params) == (
        "generate.sources.production.examples is required; add it to params.yaml"
    )


def test_generate_missing_key_wrong_type_and_range(tmp_path):
    assert refuse(simulator.check_params, without(section("generate"), "files_per_source")) == (
        "generate.files_per_source is required; add it to params.yaml"
    )
    assert refuse(simulator.check_params, section("generate", {"format": "xlsx"})) == (
        "generate.format must be one of ['parquet', 'csv', 'csv.gz', 'jsonl'], got 'xlsx'"
    )
    assert refuse(simulator.check_params, section("generate", {"prior": 1.5})) == (
        "generate.prior must be a number > 0 and < 1, got 1.5"
    )
    msg = refuse(simulator.check_params, section("generate", {"max_rows": 5}))
    assert msg == "generate.max_rows must be >= min_rows, got 5"  # a check across fields
    with pytest.raises(ValueError, match="generate.dimm"):
        generation.generate(section("generate", {"dimm": 12}), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


# ----------------------------------------------------------------------------- names and paths


def ingest(**source: Any) -> dict[str, Any]:
    """The real ingest section with one CSV source ``mine`` (the keys ``source`` replace)."""
    return {**section("ingest"), "sources": {"mine": {"path": "data/raw/mine", **source}}}


def check_ingest(params: dict[str, Any]) -> None:
    IngestConfig.from_params(params, simulation=REAL["generate"])


# Every spec that holds a path or a name (settings.Text, settings.MapOf's names,
# rawio.sources' column names): the empty string is refused, naming the full key path.
EMPTY = "''"


@pytest.mark.parametrize(
    ("check", "params", "message"),
    [
        (
            check_ingest,
            ingest(path="", negative_rate=1.0),
            f"ingest.sources.mine.path must be a non-empty string, got {EMPTY}",
        ),
        (
            check_ingest,
            section("ingest", {"sources": {"pool": {"path": ""}}}),  # format: simulated
            f"ingest.sources.pool.path must be a non-empty string, got {EMPTY}",
        ),
        (
            check_ingest,
            {**section("ingest"), "sources": {"": {"path": "x", "negative_rate": 1.0}}},
            f"ingest.sources: names must be non-empty strings, got {EMPTY}",
        ),
        (
            check_ingest,
            ingest(negative_rate=1.0, columns={"label": ""}),
            "ingest.sources.mine.columns.label must be a column name or a 0-based position, "
            f"got {EMPTY}",
        ),
        (
            check_ingest,
            ingest(negative_rate=1.0, features=["f0", ""]),
            "ingest.sources.mine.features[1] must be a column name or a 0-based position, "
            f"got {EMPTY}",
        ),
        (
            check_ingest,
            ingest(negative_rate=1.0, delimiter=""),
            f"ingest.sources.mine.delimiter must be a non-empty string, got {EMPTY}",
        ),
        (
            splitting.check_params,
            section("split", {"priority": ["production", ""]}),
            f"split.priority[1] must be a non-empty string, got {EMPTY}",
        ),
        (
            splitting.check_params,
            section("split", {"feeds": {"": {"train": 0.5}}}),
            f"split.feeds: names must be non-empty strings, got {EMPTY}",
        ),
        (
            simulator.check_params,
            section("generate", {"sources": {"": {"examples": 10, "negative_rate": 1.0}}}),
            f"generate.sources: names must be non-empty strings, got {EMPTY}",
        ),
    ],
    ids=[
        "ingest-path",
        "ingest-simulated-path",
        "ingest-source-name",
        "ingest-column",
        "ingest-feature",
        "ingest-delimiter",
        "split-priority",
        "split-feeds-name",
        "generate-source-name",
    ],
)
def test_an_empty_path_or_name_is_refused_naming_the_full_key(check, params, message):
    assert refuse(check, params) == message


def test_a_tab_is_a_name_not_an_empty_one():
    """Whitespace is not refused: a tab is the delimiter of a .tsv source."""
    config = IngestConfig.from_params(ingest(negative_rate=1.0, delimiter="\t"))
    assert config.sources[0].delimiter == "\t"


# ----------------------------------------------------------------------------- real params.yaml


def test_audit_unknown_missing_and_out_of_range():
    msg = refuse(audit.check_params, section("audit", {"ks_mx": 0.2}))
    assert msg.startswith("audit.ks_mx: unknown key") and "did you mean 'ks_max'?" in msg
    assert refuse(audit.check_params, without(section("audit"), "ci_z")) == (
        "audit.ci_z is required; add it to params.yaml"
    )
    assert refuse(audit.check_params, section("audit", {"alpha": 1})) == (
        "audit.alpha must be a number > 0 and < 1, got 1"
    )


def test_train_unknown_missing_wrong_type():
    msg = refuse(train.resolve_params, section("train", {"learnig_rate": 0.1}))
    assert msg.startswith("train.learnig_rate: unknown key")
    assert "did you mean 'learning_rate'?" in msg
    assert refuse(train.resolve_params, without(section("train"), "patience")) == (
        "train.patience is required; add it to params.yaml"
    )
    assert refuse(train.resolve_params, section("train", {"filter_sizes": [5, 0]})) == (
        "train.filter_sizes[1] must be an integer >= 1, got 0"
    )
    assert refuse(train.resolve_params, section("train", {"epochs": True})) == (
        "train.epochs must be an integer >= 1, got True"
    )


CHECKS = {
    "audit": audit.check_params,
    "downsample": downsampling.check_params,
    "evaluate": check_evaluate_params,
    "generate": simulator.check_params,
    "monitor": monitoring.check_params,
    "ingest": IngestConfig.from_params,  # its own checks (not yet check_section)
    "split": splitting.check_params,
    "train": train.resolve_params,
}


def test_every_stage_section_is_checked():
    assert set(CHECKS) == set(REAL) - {"paths"}


def _check(name: str, params: dict) -> None:
    """Check one section; ingest's simulated sources are checked against ``generate``."""
    if name == "ingest":
        IngestConfig.from_params(params[name], simulation=params["generate"])
    else:
        CHECKS[name](params[name])


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_every_section_of_params_yaml_is_valid(name):
    _check(name, copy.deepcopy(REAL))


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_tiny_test_params_are_valid(name):
    _check(name, deep_merge(REAL, TINY_PARAMS))


# ----------------------------------------------------------------------------- each spec's edges


def fails(spec: settings.Spec, value: Any, key: str = "demo.k") -> str:
    with pytest.raises(ValueError) as err:
        spec.check(value, key)
    return str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "value", "message"),
    [
        ({}, float("inf"), "k must be a number, got inf"),
        ({}, "1", "k must be a number, got '1'"),
        ({"integer": True}, 2.0, "k must be an integer, got 2.0"),
        ({"integer": True}, False, "k must be an integer, got False"),
        ({"integer": True, "minimum": 1}, 0, "k must be an integer >= 1, got 0"),
        ({"maximum": 1, "max_open": True}, 1, "k must be a number < 1, got 1"),
        ({"maximum": 1}, 1.5, "k must be a number <= 1, got 1.5"),
        ({"minimum": 0.5, "maximum": 2.5}, 0.25, "k must be a number >= 0.5 and <= 2.5, got 0.25"),
        (
            {"minimum": 0, "min_open": True, "none": True},
            0,
            "k must be null or a number > 0, got 0",
        ),
        ({"none": True}, "x", "k must be null or a number, got 'x'"),
        ({}, None, "k must be a number, got None"),  # null only where allowed
    ],
)
def test_check_number_refuses_naming_exactly_what_is_allowed(kwargs, value, message):
    with pytest.raises(ValueError) as err:
        settings.check_number(value, "k", **kwargs)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("kwargs", "value"),
    [
        ({"minimum": 0}, 0),  # the bounds are closed unless marked open
        ({"maximum": 1}, 1),
        ({"minimum": 0, "maximum": 1, "min_open": True, "max_open": True}, 0.5),
        ({"minimum": 0, "min_open": True}, 1e-12),
        ({"maximum": 1, "max_open": True}, 1 - 1e-12),
        ({}, -1e300),
        ({}, 2.5),  # not an integer unless asked
        ({"integer": True}, 10**30),
        ({"none": True}, None),
    ],
)
def test_check_number_accepts_the_edges_of_its_range(kwargs, value):
    assert settings.check_number(value, "k", **kwargs) is value


def test_number_and_integer_specs_pass_their_options_on():
    assert settings.Number(minimum=0).check(0.5, "k") == 0.5
    assert fails(settings.Number(minimum=1), 0.5) == "demo.k must be a number >= 1, got 0.5"
    assert fails(settings.Integer(), 0.5) == "demo.k must be an integer, got 0.5"
    assert fails(settings.Integer(minimum=1), 0) == "demo.k must be an integer >= 1, got 0"
    assert settings.Integer(none=True).check(None, "k") is None
    assert settings.Optional(settings.Integer()).check(3, "k") == 3
    assert fails(settings.Optional(settings.Integer()), "3") == "demo.k must be an integer, got '3'"


def test_choice_compares_type_and_value_and_hints_only_among_names():
    spec = settings.Choice(1, "fast", None)
    assert spec.check(1, "k") == 1
    assert spec.check(None, "k") is None
    assert fails(spec, True) == "demo.k must be one of [1, 'fast', None], got True"
    assert fails(spec, 1.0) == "demo.k must be one of [1, 'fast', None], got 1.0"
    assert fails(spec, "1") == "demo.k must be one of [1, 'fast', None], got '1'"
    assert fails(spec, "fsat") == (
        "demo.k must be one of [1, 'fast', None], got 'fsat'; did you mean 'fast'?"
    )


def test_text_and_flag_refuse_naming_the_key():
    assert settings.Text().check("\t", "k") == "\t"
    assert fails(settings.Text(), None) == "demo.k must be a non-empty string, got None"
    assert settings.Flag().check(False, "k") is False
    assert fails(settings.Flag(), 1) == "demo.k must be true or false, got 1"
    assert fails(settings.Flag(), "true") == "demo.k must be true or false, got 'true'"


def test_list_of_length_null_and_repeats():
    items = settings.ListOf(settings.Integer())
    assert items.check([], "k") == []  # no minimum unless asked
    assert fails(items, None) == "demo.k must be a list, got None"
    assert fails(items, (1,)) == "demo.k must be a list, got (1,)"
    two = settings.ListOf(settings.Integer(), min_len=2, none=True)
    assert two.check([1, 2], "k") == [1, 2]
    assert two.check(None, "k") is None
    assert fails(two, [1]) == "demo.k must be null or a list of at least 2 item(s), got [1]"
    assert fails(two, [1, "2"]) == "demo.k[1] must be an integer, got '2'"
    unique = settings.ListOf(settings.Text(), unique=True)
    assert unique.check(["a", "b", "c"], "k") == ["a", "b", "c"]
    assert fails(unique, ["a", "b", "b", "a"]) == (
        "demo.k must not repeat items, got ['a', 'b', 'b', 'a'] ('b' twice)"
    )
    assert items.check([1, 1], "k") == [1, 1]  # repeats only refused where asked


def test_section_refuses_a_non_mapping_and_unknown_keys_naming_the_value():
    spec = settings.Section({"a": settings.Integer(), "b": settings.Optional(settings.Text())})
    assert spec.check({"a": 1}, "k") == {"a": 1}
    assert fails(spec, [1]) == "demo.k must be a mapping with keys ['a', 'b'], got [1]"
    assert fails(spec, {"a": 1, "c": [2]}) == (
        "demo.k.c: unknown key (value [2]); allowed keys in demo.k are ['a', 'b']"
    )
    assert fails(spec, {"a": 1, "bb": "x"}) == (
        "demo.k.bb: unknown key (value 'x'); allowed keys in demo.k are ['a', 'b']; "
        "did you mean 'b'?"
    )
    assert fails(spec, {"b": ""}) == "demo.k.b must be a non-empty string, got ''"  # type first
    assert fails(spec, {"b": "x"}) == "demo.k.a is required; add it to params.yaml"


def test_map_of_names_minimum_and_allowed_names():
    spec = settings.MapOf(settings.Integer(), keys=["train", "test"])
    assert spec.check({"train": 1}, "k") == {"train": 1}
    assert fails(spec, {}) == "demo.k must be a mapping of at least 1 name(s) -> value, got {}"
    assert fails(spec, [("train", 1)]) == (
        "demo.k must be a mapping of at least 1 name(s) -> value, got [('train', 1)]"
    )
    assert fails(spec, {1: 1}) == "demo.k: names must be non-empty strings, got 1"
    assert fails(spec, {"trian": 1}) == (
        "demo.k.trian: unknown name; allowed are ['train', 'test']; did you mean 'train'?"
    )
    assert fails(spec, {"zzz": 1}) == "demo.k.zzz: unknown name; allowed are ['train', 'test']"
    assert fails(spec, {"test": 1.5}) == "demo.k.test must be an integer, got 1.5"
    free = settings.MapOf(settings.Integer(), min_len=0)
    assert free.check({}, "k") == {}
    assert settings.MapOf(settings.Integer()).check({"any": 2}, "k") == {"any": 2}
    assert fails(settings.MapOf(settings.Integer(), min_len=2), {"a": 1}).startswith(
        "demo.k must be a mapping of at least 2 name(s)"
    )


def test_check_section_returns_a_plain_dict_and_takes_null_as_empty():
    schema = {"a": settings.Optional(settings.Integer())}
    assert settings.check_section(None, schema, "s") == {}
    params = {"a": 1}
    out = settings.check_section(params, schema, "s")
    assert out == params and type(out) is dict and out is not params


# ----------------------------------------------------------------------------- load_params


def params_file(tmp_path, text: str):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_load_params_reads_one_section_and_null_as_empty(tmp_path):
    path = params_file(tmp_path, "split:\n  seed: 3\naudit:\n")
    assert settings.load_params(path, "split") == {"seed": 3}
    assert settings.load_params(str(path), "audit") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "{path}: no section 'split'; sections are []"),
        ("b: 1\na: 2\n", "{path}: no section 'split'; sections are ['a', 'b']"),
        ("- split\n", "{path}: must be a mapping of sections, got list"),
        ("split: [1]\n", "{path}: section 'split' must be a mapping of keys, got [1]"),
        ("split: {a: 1\n", "{path}, line 2, column 1: not valid YAML: "),
    ],
)
def test_load_params_refuses_naming_the_file(tmp_path, text, message):
    path = params_file(tmp_path, text)
    with pytest.raises(ValueError) as err:
        settings.load_params(path, "split")
    assert str(err.value).startswith(message.format(path=path))


def test_require_names_section_and_key():
    assert settings.require({"seed": 0}, "seed", "split") == 0
    with pytest.raises(ValueError) as err:
        settings.require({"sed": 0}, "seed", "split")
    assert str(err.value) == "split.seed is required; add it to params.yaml"

"""Scores made elsewhere: a team's own model evaluated at the production prior like the CNN.

A team declares one scores file in params.yaml (``train.external_scores``: a name -> its
``path``, ``column``, ``scale`` and ``trained_at``). The train stage then trains nothing: it
reads the file, checks it against the manifest (:func:`check_scores`: every evaluated example
once, finite scores, probabilities in [0, 1]) before any other work, and writes the model
folder with the scores as log-odds (``SCORES_FILE``) and a train record that says what they
were trained at. Evaluate reads those log-odds where it would have scored with the CNN
(:func:`read_model_scores`), so every metric, plot and label-free check follows unchanged;
bundle writes a bundle that holds no model (:func:`bundle_model_record`), which ``score``
refuses for raw examples and accepts for ``--scores FILE --summary``.

What the scores were trained at decides the prior correction (``trained_at``):

- ``production``: already probabilities (or log-odds) at the production prior; beta 1;
- ``{prior: p}``: calibrated at a training prior ``p`` (a model trained on a 1:2 sample:
  ``p = 1/3``); beta moves them from ``p`` to the production prior the manifest gives, and
  evaluate moves on to ``evaluate.prior`` where that is set, as for the CNN;
- ``{beta: b}``: trained on data whose negatives were kept at rate ``b`` relative to
  production (Dal Pozzolo et al. 2015); beta ``b``.

A probability of exactly 0 or 1 has no finite log-odds; it becomes the log-odds of the
nearest float64 probability inside (0, 1) (about -744 and 36.7), which keeps every order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, TypedDict

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from scipy.special import logit

from dsprior import priors, runtime, settings

SCALES = ("log_odds", "probability")
SCORES_FILE = "external_scores.parquet"  # in the model folder: example_id, logit
RECORD_KEY: Final = "external_scores"  # train.json's and bundle.json's record of the scores
MODEL_KIND = "external_scores"  # bundle.json's model.kind
ID = "example_id"
NAME = re.compile(r"[A-Za-z0-9_-]+")
SHOWN = 5  # ids or rows named in an error
# The float64 probabilities nearest 0 and 1 inside (0, 1): the log-odds of 0 and 1.
PROBABILITY_FLOOR = float(np.nextafter(0.0, 1.0))
PROBABILITY_CEILING = float(np.nextafter(1.0, 0.0))


class TrainedAt(settings.Spec):
    """``production``, or a mapping ``{prior: p}`` with p in (0, 1), or ``{beta: b}``, b > 0."""

    ALLOWED = "production, {prior: P} with P in (0, 1), or {beta: B} with B > 0"

    def check(self, value: Any, key: str) -> Any:
        if value == "production":
            return value
        if isinstance(value, dict) and len(value) == 1:
            ((name, number),) = value.items()
            ok = isinstance(number, (int, float)) and not isinstance(number, bool)
            if name == "prior" and ok and 0 < number < 1:
                return value
            if name == "beta" and ok and np.isfinite(number) and number > 0:
                return value
        raise ValueError(f"{key} must be {self.ALLOWED}, got {value!r}")


ENTRY_SCHEMA: dict[str, settings.Spec] = {
    "path": settings.Text(),
    "column": settings.Text(),
    "scale": settings.Choice(*SCALES),
    "trained_at": TrainedAt(),
}
PARAMS_SPEC = settings.MapOf(settings.Section(ENTRY_SCHEMA), min_len=0)


def declared_scores(
    section: Mapping[str, Any], *, key: str = "train.external_scores"
) -> tuple[str, dict[str, Any]] | None:
    """The one declared scores file as (name, entry), or None when the mapping is empty.

    ``section`` is the ``external_scores`` mapping, already checked against ``PARAMS_SPEC``.
    """
    if not section:
        return None
    if len(section) > 1:
        raise ValueError(
            f"{key} declares {len(section)} scores files ({sorted(section)}); declare one "
            "(evaluate each model in its own run or `dvc exp run -S`)"
        )
    ((name, entry),) = section.items()
    if not NAME.fullmatch(name):
        raise ValueError(
            f"{key}.{name}: the name must be letters, digits, '_' or '-' (it names a DVC stage "
            "and a file)"
        )
    try:
        scores_format(entry["path"])
    except ValueError as exc:
        raise ValueError(f"{key}.{name}.path: {exc}") from None
    return name, entry


def scores_format(path: str | Path) -> str:
    """``parquet`` or ``csv`` from the file's extension (.parquet, .csv, .csv.gz)."""
    name = Path(path).name.lower()
    for suffix in (".parquet", ".csv", ".csv.gz"):
        if name.endswith(suffix):
            return "csv" if suffix.startswith(".csv") else "parquet"
    raise ValueError(f"{path}: a scores file must end in .parquet, .csv or .csv.gz")


def read_scores_table(path: str | Path, *, column: str) -> pd.DataFrame:
    """``example_id`` (str) and ``score`` (float64) from a Parquet or CSV file, in file order,
    with ``group`` and ``label`` when the file has them (``score --summary`` reads those).

    ValueError naming the file when it lacks a column or the scores are not numbers.
    """
    path = Path(path)
    fmt = scores_format(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such scores file")
    if fmt == "parquet":
        table = pq.read_table(path)
    else:
        options = pacsv.ConvertOptions(column_types={ID: pa.string(), "group": pa.string()})
        try:
            table = pacsv.read_csv(path, convert_options=options)
        except pa.ArrowInvalid as exc:
            raise ValueError(f"{path}: not a readable CSV scores file ({exc})") from exc
    missing = [c for c in (ID, column) if c not in table.column_names]
    if missing:
        raise ValueError(
            f"{path}: no column {missing[0]!r}; a scores file needs {ID!r} and the score column "
            f"{column!r}, got columns {table.column_names}"
        )
    try:
        scores = table.column(column).cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValueError(
            f"{path}: column {column!r} must hold numbers, got {table.schema.field(column).type}"
        ) from exc
    ids = table.column(ID)
    if ids.null_count:
        raise ValueError(f"{path}: {ids.null_count} rows have no {ID}")
    out = pd.DataFrame({ID: ids.cast(pa.string()).to_pylist(), "score": scores})
    for extra in ("group", "label"):
        if extra in table.column_names and extra not in (ID, column):
            out[extra] = table.column(extra).to_pylist()
    return out


def _named(values: Sequence[Any]) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:SHOWN])
    return shown + (", ..." if len(values) > SHOWN else "")


def check_values(table: pd.DataFrame, *, path: str | Path, scale: str) -> None:
    """ValueError naming ``path`` for duplicate ids (their row numbers, the first data row
    being row 1), non-finite scores and probabilities outside [0, 1]."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    duplicated = table[ID].duplicated(keep=False).to_numpy()
    if duplicated.any():
        rows = np.flatnonzero(duplicated) + 1
        ids = pd.unique(table[ID].to_numpy()[duplicated])
        raise ValueError(
            f"{path}: {len(ids)} example ids occur more than once ({_named(ids)}), at rows "
            f"{_named(rows.tolist())} (row 1 is the first data row); each example needs one score"
        )
    scores = table["score"].to_numpy(np.float64)
    bad = ~np.isfinite(scores)
    if bad.any():
        ids = table[ID].to_numpy()[bad]
        raise ValueError(
            f"{path}: {int(bad.sum())} scores are not finite numbers (NaN, empty or infinite), "
            f"for example ids {_named(ids)}"
        )
    if scale == "probability":
        outside = (scores < 0) | (scores > 1)
        if outside.any():
            pairs = [
                f"{str(i)!r}: {float(s)!r}"
                for i, s in zip(table[ID][outside], scores[outside], strict=True)
            ]
            raise ValueError(
                f"{path}: {int(outside.sum())} probabilities are outside [0, 1] ("
                + ", ".join(pairs[:SHOWN])
                + (", ..." if len(pairs) > SHOWN else "")
                + "); is the scale log_odds?"
            )


def to_log_odds(scores: np.ndarray, *, scale: str) -> np.ndarray:
    """Scores as float64 log-odds: log-odds as they are, probabilities through the logit
    (0 and 1 first moved to the nearest float64 inside (0, 1))."""
    values = np.asarray(scores, dtype=np.float64)
    if scale == "log_odds":
        return values
    if scale != "probability":
        raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    return logit(np.clip(values, PROBABILITY_FLOOR, PROBABILITY_CEILING))


def check_scores(
    table: pd.DataFrame,
    known_ids: Sequence[str],
    evaluated_ids: Sequence[str],
    *,
    path: str | Path,
    scale: str,
) -> np.ndarray:
    """The log-odds of ``evaluated_ids``, in their order, from a scores table.

    ValueError naming ``path`` (``check_values``), then for ids that are not ``known_ids``
    (the manifest's and the dataset's: another dataset's scores) and for evaluated (dev_a,
    dev_b, test) ids the file lacks: how many, and a few of them. Scores of the other
    examples (train, those split dropped) are allowed and unused.
    """
    check_values(table, path=path, scale=scale)
    ids = table[ID].to_numpy()
    unknown = ids[~pd.Index(ids).isin(pd.Index(known_ids))]
    if len(unknown):
        raise ValueError(
            f"{path}: {len(unknown)} example ids are neither in the manifest nor in the dataset "
            f"({_named(unknown)}); score the examples of this dataset"
        )
    position = pd.Series(np.arange(len(ids)), index=pd.Index(ids))
    wanted = pd.Index(list(evaluated_ids))
    absent = wanted[~wanted.isin(position.index)]
    if len(absent):
        raise ValueError(
            f"{path}: {len(absent)} of the {len(wanted)} dev_a, dev_b and test examples have no "
            f"score ({_named(absent.tolist())}); the file must score every one of them"
        )
    scores = table["score"].to_numpy(np.float64)[position.loc[wanted].to_numpy()]
    return to_log_odds(scores, scale=scale)


def prior_record(trained_at: Any, *, production_prior: float) -> dict[str, Any]:
    """beta, the training prior and the prior beta restores, as train.json holds them for
    the CNN, from ``trained_at`` and the manifest's production prior estimate."""
    if trained_at == "production":
        # already at the production prior: nothing to move, so no prior to move from either
        return {"beta": 1.0, "training_prior": None, "production_prior_estimate": None}
    ((kind, value),) = trained_at.items()
    if kind == "prior":
        beta = priors.beta_from_priors(production_prior=production_prior, training_prior=value)
        return {
            "beta": beta,
            "training_prior": float(value),
            "production_prior_estimate": production_prior,
        }
    # beta is relative to production itself: no further shift from an estimated prior
    training_prior = float(priors.invert_prior_correction(production_prior, beta=value))
    return {
        "beta": float(value),
        "training_prior": training_prior,
        "production_prior_estimate": None,
    }


def train_record(
    name: str,
    entry: dict[str, Any],
    *,
    params: dict[str, Any],
    production_prior: float,
    examples: int,
    sha256: str,
    dim: int,
) -> dict[str, Any]:
    """train.json for external scores: the prior correction's inputs, what was read, params."""
    return {
        "dim": int(dim),
        **prior_record(entry["trained_at"], production_prior=production_prior),
        "params": params,
        "min_rows": 1,
        RECORD_KEY: {
            "name": name,
            "path": str(entry["path"]),
            "column": entry["column"],
            "scale": entry["scale"],
            "trained_at": entry["trained_at"],
            "sha256": sha256,
            "examples": int(examples),
            "file": SCORES_FILE,
            "production_prior_estimate": production_prior,
        },
        "best_step": None,
        "select_metric": None,
        "best_value": None,
    }


# train's DVCLive plot folders (dvc.yaml declares them): empty when nothing was trained
LIVE_PLOT_FOLDERS = (
    "plots/metrics/dev_a/sampled",
    "plots/metrics/dev_a/prior",
    "plots/metrics/train",
)


def live_metrics(record: dict[str, Any]) -> dict[str, Any]:
    """train's metrics.json when nothing was trained: what was read, and the prior correction."""
    scores = record[RECORD_KEY]
    return {
        "external_scores": {
            "name": scores["name"],
            "examples": scores["examples"],
            "scale": scores["scale"],
        },
        "beta": record["beta"],
    }


def is_external(train_record: Mapping[str, Any]) -> bool:
    """Whether a model folder holds external scores instead of a model."""
    return RECORD_KEY in train_record


def model_scores_table(example_ids: Sequence[str], log_odds: np.ndarray) -> pa.Table:
    """The model folder's scores: ``example_id`` and ``logit`` (float64)."""
    return pa.table(
        {ID: pa.array(list(example_ids), pa.string()), "logit": pa.array(log_odds, pa.float64())}
    )


def read_model_scores(model_dir: str | Path, example_ids: Sequence[str]) -> np.ndarray:
    """The log-odds of ``example_ids`` (in their order) from a model folder's external scores.

    ValueError when the folder lacks any of them: the manifest changed since train read
    the file (rerun train).
    """
    path = Path(model_dir) / SCORES_FILE
    table = pq.read_table(path).to_pandas()
    position = pd.Series(np.arange(len(table)), index=pd.Index(table[ID]))
    wanted = pd.Index(list(example_ids))
    absent = wanted[~wanted.isin(position.index)]
    if len(absent):
        raise ValueError(
            f"{path}: {len(absent)} evaluated examples have no score ({_named(absent.tolist())}); "
            "rerun train (`dvc repro`)"
        )
    return table["logit"].to_numpy(np.float64)[position.loc[wanted].to_numpy()]


class ExternalModelRecord(TypedDict):
    """``model`` of a bundle built from external scores (``dsprior.external``): no model file."""

    kind: Annotated[str, "external_scores"]
    name: Annotated[str, "the scores' name in train.external_scores"]
    column: Annotated[str, "the score column a batch file holds"]
    scale: Annotated[str, "log_odds or probability"]
    trained_at: Annotated[Any, "the prior the scoring model was trained at (or its beta)"]
    sha256: Annotated[str, "the scores file's sha256"]
    note: Annotated[str, "what such a bundle can and cannot do"]


def bundle_model_record(train_record: Mapping[str, Any]) -> ExternalModelRecord:
    """bundle.json's ``model`` for external scores: no model file, what the scores are."""
    record = train_record[RECORD_KEY]
    return {
        "kind": MODEL_KIND,
        "name": record["name"],
        "column": record["column"],
        "scale": record["scale"],
        "trained_at": record["trained_at"],
        "sha256": record["sha256"],
        "note": "built from scores made outside the pipeline: it holds no model and scores "
        "nothing by itself; score examples with your own model, then "
        "`score --bundle BUNDLE --scores FILE --summary S.json`",
    }


def is_external_spec(spec: Mapping[str, Any]) -> bool:
    """Whether a bundle.json describes external scores (a bundle without a model)."""
    model = spec.get("model")
    return isinstance(model, dict) and model.get("kind") == MODEL_KIND


def refuse_external_bundle(bundle_dir: str | Path, spec: Mapping[str, Any]) -> None:
    """ValueError when the bundle holds external scores: it cannot score raw examples."""
    if is_external_spec(spec):
        model = spec["model"]
        raise ValueError(
            f"{bundle_dir} was built from external scores ({model.get('name')!r}, "
            f"{model.get('scale')}): it holds no model and cannot score raw examples. Score them "
            "with your own model and pass that file: `score --bundle "
            f"{bundle_dir} --scores FILE --summary S.json` (columns example_id and "
            f"{model.get('column')!r}, {model.get('scale')})"
        )


def import_scores(
    name: str,
    entry: dict[str, Any],
    *,
    known_ids: Sequence[str],
    evaluated_ids: Sequence[str],
    production_prior: float,
    params: dict[str, Any],
    dim: int,
) -> tuple[pa.Table, dict[str, Any]]:
    """The model folder's content for a declared scores file: the evaluated examples' log-odds
    (``SCORES_FILE``) and train.json. Reads and checks the file (``check_scores``) first."""
    path = entry["path"]
    table = read_scores_table(path, column=entry["column"])
    log_odds = check_scores(table, known_ids, evaluated_ids, path=path, scale=entry["scale"])
    record = train_record(
        name,
        entry,
        params=params,
        production_prior=production_prior,
        examples=len(evaluated_ids),
        sha256=runtime.file_sha256(path),
        dim=dim,
    )
    return model_scores_table(evaluated_ids, log_odds), record

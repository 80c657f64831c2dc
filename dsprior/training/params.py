"""The ``train`` section of params.yaml: every key, the values it allows, the checks across
keys, and the typed config the training code reads. No TensorFlow here, so a stage can check
its params before TF starts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from dsprior import external, hardware, settings

MODELS = ("cnn", "pooled_logistic")  # dsprior.cnn | dsprior.pooled_logistic
BALANCE_MODES = ("downsample", "weighted")
LOSS_WEIGHTS = ("class", "example")
PRECISIONS = hardware.PRECISIONS  # auto | float32 | mixed_bfloat16
STRATEGIES = ("default", "mirrored", "multi_worker")
SCORE_NAMES = ("loss", "precision", "recall", "f1", "average_precision")

_POSITIVE = settings.Integer(minimum=1)
PARAMS_SCHEMA: dict[str, settings.Spec] = {
    "model": settings.Choice(*MODELS),
    "seed": settings.Integer(minimum=0),
    "filter_sizes": settings.ListOf(_POSITIVE, min_len=1),
    "filters": _POSITIVE,
    "dropout": settings.Number(minimum=0, maximum=1, max_open=True),
    "l2": settings.Number(minimum=0),
    "learning_rate": settings.Number(minimum=0),  # 0 freezes the weights (a test uses it)
    "batch_size": _POSITIVE,
    "epochs": _POSITIVE,
    "log_every": _POSITIVE,
    "eval_every": _POSITIVE,
    "eval_batch_size": _POSITIVE,
    "eval_sample": settings.Integer(minimum=1, none=True),
    "eval_whole": _POSITIVE,
    "balance": settings.Choice(*BALANCE_MODES),
    "loss_weight": settings.Choice(*LOSS_WEIGHTS),
    "select_metric": settings.Choice(*SCORE_NAMES),
    "patience": settings.Integer(minimum=1, none=True),
    "threshold": settings.Number(minimum=0, maximum=1),
    "pool_size": _POSITIVE,
    "prefetch": settings.Integer(minimum=0),
    "checkpoint_every": _POSITIVE,
    "precision": settings.Choice(*PRECISIONS),
    "onednn": settings.Choice(*hardware.ONEDNN_SETTINGS),
    "strategy": settings.Choice(*STRATEGIES),
    "input_shards": settings.Integer(minimum=1, none=True),
    # model: pooled_logistic only (scikit-learn's LogisticRegression C and max_iter)
    "pooled_logistic": settings.Section(
        {"C": settings.Number(minimum=0, min_open=True), "max_iter": _POSITIVE}
    ),
    # scores made elsewhere, evaluated instead of a model trained here (dsprior.external)
    "external_scores": external.PARAMS_SPEC,
}


@dataclass(frozen=True)
class TrainConfig:
    """The checked ``train`` section: one attribute a key (``PARAMS_SCHEMA``), with
    ``precision`` and ``onednn`` together as ``compute``. Numbers keep the type params.yaml
    gave them, so that ``as_params`` (train.json's ``params``) is the section as written."""

    seed: int
    filter_sizes: tuple[int, ...]
    filters: int
    dropout: float
    l2: float
    learning_rate: float
    batch_size: int
    epochs: int
    log_every: int
    eval_every: int
    eval_batch_size: int
    eval_sample: int | None  # dev_a examples scored at every evaluation (None: all of dev_a)
    eval_whole: int  # with a sample: evaluations that score all of dev_a (log-spaced)
    balance: str
    loss_weight: str
    select_metric: str
    patience: int | None
    threshold: float
    pool_size: int
    prefetch: int
    checkpoint_every: int
    compute: hardware.ComputeParams
    strategy: str
    input_shards: int | None
    # scores made elsewhere, evaluated instead of a model trained here (dsprior.external)
    external_scores: Mapping[str, Any]
    model: str  # cnn | pooled_logistic
    pooled_logistic: Mapping[str, Any]  # model pooled_logistic only: C and max_iter

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainConfig:
        """The config of a section that ``PARAMS_SCHEMA`` accepted (``resolve_params``)."""
        fields = {k: v for k, v in params.items() if k not in ("precision", "onednn")}
        fields["filter_sizes"] = tuple(params["filter_sizes"])
        compute = hardware.ComputeParams(params["precision"], params["onednn"])
        return cls(**fields, compute=compute)

    def as_params(self) -> dict[str, Any]:
        """The section as params.yaml holds it: train.json's ``params`` and the run fingerprint."""
        out = asdict(self)
        out.update(out.pop("compute"))
        out["filter_sizes"] = list(self.filter_sizes)
        return out


def resolve_params(params: Mapping[str, Any] | None) -> TrainConfig:
    """The ``train`` section, every key checked (``PARAMS_SCHEMA``, then across keys)."""
    p = settings.check_section(params, PARAMS_SCHEMA, "train")
    if p["checkpoint_every"] % p["log_every"]:
        raise ValueError(
            f"train.checkpoint_every ({p['checkpoint_every']}) must be a multiple of "
            f"train.log_every ({p['log_every']}) so that no log window straddles a restart"
        )
    if p["pool_size"] < p["batch_size"]:
        raise ValueError(
            f"train.pool_size must be >= batch_size ({p['batch_size']}), got {p['pool_size']!r}"
        )
    shards = p["input_shards"]
    if shards is not None and p["batch_size"] % shards:
        raise ValueError(
            f"train.batch_size ({p['batch_size']}) must be a multiple of "
            f"train.input_shards ({shards}): every shard contributes an equal part of a batch"
        )
    if p["strategy"] == "multi_worker" and p["patience"] is not None:
        raise ValueError(
            "train.patience must be null with strategy multi_worker: only the chief evaluates "
            f"dev_a, so the other workers cannot know when to stop (got {p['patience']!r})"
        )
    external.declared_scores(p["external_scores"])  # at most one, a usable name and path
    return TrainConfig.from_params(p)

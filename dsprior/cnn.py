"""The model: architecture, save, load. A Kim-style sentence-set CNN (Kim 2014), masked
for variable-length examples.

An example is a ``(rows, dim)`` matrix of sentence vectors. Each filter height ``h``
is a ``Conv1D`` over rows spanning all ``dim`` columns, then ReLU and a max over
the row windows; the pooled maps of all heights are concatenated, dropped out
and fed to one sigmoid unit.

Variable length is handled by two registered layers (no ``Lambda``, so the saved
model loads with ``safe_mode=True``):

- ``ZeroPadRows`` zeroes every row at or beyond an example's length and pads the
  batch to at least ``max(filter_sizes)`` rows, so padding content never reaches
  a convolution and short examples still have one window per filter height;
- ``MaskedGlobalMaxPool`` sets windows that start after the last full window to
  ``-inf`` before the max. An example shorter than ``h`` keeps exactly one
  window: its rows followed by zeros, the same zeros whatever the padding was.

Padding an example with extra rows therefore never changes its score.

L2 follows the Keras convention: ``keras.regularizers.L2(l)`` adds
``l * sum(w**2)`` to the loss (twice TensorFlow's ``l2_loss`` for the same ``l``),
applied to every convolution kernel and to the output kernel; biases are not
penalised.

``save_model`` writes and ``load_model`` reads the model folder's model file
(``dsprior.modeldir``). Importing this module imports Keras; an entry point sets TensorFlow up
(``runtime.quiet_tensorflow``, oneDNN) before it imports this.
"""

from __future__ import annotations

import json
import logging
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
from keras import ops

from dsprior import hardware

logger = logging.getLogger(__name__)

FEATURES_INPUT = "features"
LENGTHS_INPUT = "lengths"
OUTPUT_LAYER = "score"  # the float32 sigmoid output, under any dtype policy

# Zip entry time for every member of a saved model: the earliest a zip can hold.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
ZIP_EPOCH_TEXT = "1980-01-01@00:00:00"  # the same, as Keras writes ``date_saved``

# The layers register under package "stages" (their home before the library moved to
# dsprior): every saved model names them "stages>ZeroPadRows", "stages>MaskedGlobalMaxPool",
# so changing the package would make every existing model and bundle unloadable.


@keras.saving.register_keras_serializable(package="stages")
class ZeroPadRows(keras.layers.Layer):
    """Zero rows at or beyond each example's length; pad to at least ``min_rows`` rows."""

    def __init__(self, min_rows: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_rows = int(min_rows)

    def call(self, inputs):
        features, lengths = inputs
        batch = ops.shape(features)[0]
        rows = ops.shape(features)[1]
        dim = ops.shape(features)[2]
        extra = ops.maximum(self.min_rows - rows, 0)
        features = ops.concatenate(
            [features, ops.zeros((batch, extra, dim), dtype=features.dtype)], axis=1
        )
        positions = ops.arange(ops.shape(features)[1], dtype="int32")
        mask = ops.expand_dims(positions, 0) < ops.expand_dims(ops.cast(lengths, "int32"), 1)
        return features * ops.cast(ops.expand_dims(mask, -1), features.dtype)

    def compute_output_shape(self, input_shape):
        shape = input_shape[0]
        return (shape[0], None, shape[2])

    def get_config(self) -> dict:
        return {**super().get_config(), "min_rows": self.min_rows}


@keras.saving.register_keras_serializable(package="stages")
class MaskedGlobalMaxPool(keras.layers.Layer):
    """Max over row windows of a ``valid`` convolution, ignoring windows in the padding.

    With ``n`` real rows and filter height ``h`` the valid windows are the first
    ``max(n - h + 1, 1)``; the rest are set to ``-inf`` before the max.
    """

    def __init__(self, kernel_size: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)

    def call(self, inputs):
        conv, lengths = inputs
        windows = ops.maximum(ops.cast(lengths, "int32") - self.kernel_size + 1, 1)
        positions = ops.arange(ops.shape(conv)[1], dtype="int32")
        valid = ops.expand_dims(positions, 0) < ops.expand_dims(windows, 1)
        neg_inf = ops.cast(float("-inf"), conv.dtype)
        return ops.max(ops.where(ops.expand_dims(valid, -1), conv, neg_inf), axis=1)

    def compute_output_shape(self, input_shape):
        shape = input_shape[0]
        return (shape[0], shape[2])

    def get_config(self) -> dict:
        return {**super().get_config(), "kernel_size": self.kernel_size}


def build_cnn(
    *,
    dim: int,
    filter_sizes: Sequence[int] = (5, 6, 7, 8, 9, 10),
    filters: int = 125,
    dropout: float = 0.5,
    l2: float = 0.001,
    seed: int = 0,
) -> keras.Model:
    """The uncompiled CNN; inputs ``{"features": [batch, rows, dim], "lengths": [batch]}``.

    Outputs the sigmoid probability of the positive class, shape ``[batch, 1]``,
    in float32 even under a mixed-precision policy.
    """
    if dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    filter_sizes = [int(h) for h in filter_sizes]
    if not filter_sizes or min(filter_sizes) < 1:
        raise ValueError(
            f"filter_sizes must be a non-empty list of positive ints, got {filter_sizes}"
        )
    if filters < 1:
        raise ValueError(f"filters must be a positive integer, got {filters!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2!r}")

    regularizer = keras.regularizers.L2(l2) if l2 > 0 else None
    features = keras.Input(shape=(None, dim), name=FEATURES_INPUT, dtype="float32")
    lengths = keras.Input(shape=(), name=LENGTHS_INPUT, dtype="int32")
    rows = ZeroPadRows(min_rows=max(filter_sizes), name="zero_pad_rows")([features, lengths])
    pooled = []
    for i, height in enumerate(filter_sizes):
        conv = keras.layers.Conv1D(
            filters,
            height,
            padding="valid",
            activation="relu",
            kernel_regularizer=regularizer,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i),
            name=f"conv_{height}",
        )(rows)
        pooled.append(
            MaskedGlobalMaxPool(kernel_size=height, name=f"max_pool_{height}")([conv, lengths])
        )
    merged = keras.layers.Concatenate(name="concat")(pooled) if len(pooled) > 1 else pooled[0]
    merged = keras.layers.Dropout(dropout, seed=seed, name="dropout")(merged)
    output = keras.layers.Dense(
        1,
        activation="sigmoid",
        kernel_regularizer=regularizer,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + len(filter_sizes)),
        dtype="float32",
        name=OUTPUT_LAYER,
    )(merged)
    return keras.Model(
        inputs={FEATURES_INPUT: features, LENGTHS_INPUT: lengths}, outputs=output, name="kim_cnn"
    )


def flops_per_example(*, n_rows: int, dim: int, filter_sizes: Sequence[int], filters: int) -> float:
    """Multiply-add FLOPs (2 per MAC) of one forward pass of the convolutions for ``n_rows`` rows."""
    return float(sum(2 * h * dim * filters * max(n_rows - h + 1, 1) for h in filter_sizes))


def model_precision(model: keras.Model) -> str:
    """The dtype policy a model computes in: that of its convolutions (``float32``, ``mixed_bfloat16``)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv1D):
            return layer.dtype_policy.name
    return model.dtype_policy.name


def with_precision(model: keras.Model, precision: str) -> keras.Model:
    """``model`` computing in ``precision``: the same weights, every layer's policy replaced.

    Under ``mixed_bfloat16`` the weights are float32 already, so a model trained in bf16
    scores in float32 (on a CPU without native bf16) by copying them into a float32 clone.
    The output layer (``score``) stays float32 either way, as ``build_cnn`` makes it.
    """
    if model_precision(model) == precision:
        return model

    def clone_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if (
            layer.name != OUTPUT_LAYER
            and not isinstance(layer, keras.layers.InputLayer)
            and "dtype" in config
        ):
            config["dtype"] = keras.DTypePolicy(precision)
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    return clone


def for_this_machine(
    model: keras.Model, *, precision: str, onednn: str
) -> tuple[keras.Model, hardware.Compute]:
    """``model`` in the precision ``dsprior.hardware`` resolves for it here, and that choice.

    float32 unless this CPU has native bf16 and the model was trained in bf16 (or params
    say otherwise); the entry point has set oneDNN before TensorFlow's import.
    """
    compute = hardware.machine_compute(precision, onednn, model_precision=model_precision(model))
    logger.info(
        "scoring in %s, oneDNN %s (%s)", compute.precision, compute.onednn_env, compute.reason
    )
    return with_precision(model, compute.precision), compute


def _renumber_shared_objects(config: Any, ids: dict[int, int] | None = None) -> Any:
    """``config`` with every ``shared_object_id`` replaced by its rank of first appearance."""
    ids = {} if ids is None else ids
    if isinstance(config, list):
        return [_renumber_shared_objects(item, ids) for item in config]
    if not isinstance(config, dict):
        return config
    out = {}
    for key, value in config.items():
        if key == "shared_object_id":
            out[key] = ids.setdefault(value, len(ids))
        else:
            out[key] = _renumber_shared_objects(value, ids)
    return out


def save_model(model: keras.Model, path: Path) -> None:
    """``model.save``, made byte-reproducible: the same weights give the same file.

    Keras stamps ``metadata.json`` with the save time (``date_saved``), the weights entry
    with the file's time, and ``config.json`` with the memory address of each shared object
    (``shared_object_id``, here the L2 regularizer every conv layer shares). The times are
    fixed to 1980-01-01 and the ids renumbered 0, 1, ... in order of appearance (loading only
    matches them within the file), so a rerun that learns the same weights leaves
    ``dvc status`` and the DVC cache unchanged.
    """
    path = Path(path)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw = Path(tmp) / path.name
        model.save(raw)
        with zipfile.ZipFile(raw) as src, zipfile.ZipFile(path, "w") as dst:
            for info in src.infolist():
                data = src.read(info)
                if info.filename == "metadata.json":
                    metadata = json.loads(data)
                    metadata["date_saved"] = ZIP_EPOCH_TEXT  # read by KerasFileEditor
                    data = json.dumps(metadata, sort_keys=True).encode()
                elif info.filename == "config.json":
                    data = json.dumps(_renumber_shared_objects(json.loads(data))).encode()
                entry = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
                entry.compress_type = info.compress_type
                entry.external_attr = 0o644 << 16
                entry.create_system = 3  # Unix, also when saved on Windows
                dst.writestr(entry, data)


def load_model(path: str | Path) -> keras.Model:
    """Load a ``.keras`` file in safe mode: registered layers only, no Lambda, no pickles.

    Uncompiled (``compile=False``): scoring needs no optimizer, loss or metrics.
    """
    return keras.saving.load_model(path, safe_mode=True, compile=False)


def model_dim(model: keras.Model) -> int:
    """Feature dimension of the model's ``features`` input."""
    inputs = model.input if isinstance(model.input, dict) else {FEATURES_INPUT: model.input}
    return int(inputs[FEATURES_INPUT].shape[-1])

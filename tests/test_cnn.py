"""The model: padding never changes a score, short examples work, save is byte-reproducible,
load is safe."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dsprior import cnn, modeldir

DIM = 16
SIZES = (3, 4, 5)


@pytest.fixture(scope="module")
def model():
    return cnn.build_cnn(dim=DIM, filter_sizes=SIZES, filters=6, dropout=0.5, l2=0.01, seed=3)


def score(model, features, lengths):
    out = model(
        {"features": np.asarray(features, np.float32), "lengths": np.asarray(lengths, np.int32)}
    )
    return np.asarray(out)[:, 0]


def test_padding_with_any_rows_does_not_change_scores(model):
    rng = np.random.default_rng(0)
    lengths = [1, 3, 5, 9]  # shorter than, equal to and longer than the largest filter
    tight = [rng.normal(size=(n, DIM)) for n in lengths]
    alone = np.array([score(model, x[None], [len(x)])[0] for x in tight])
    # batch them, padding to 20 rows with large random values instead of zeros
    padded = rng.normal(scale=50.0, size=(len(tight), 20, DIM))
    for i, x in enumerate(tight):
        padded[i, : len(x)] = x
    batched = score(model, padded, lengths)
    np.testing.assert_allclose(batched, alone, rtol=1e-5, atol=1e-6)
    # and the padding really would matter without the length mask
    unmasked = score(model, padded, [20] * len(tight))
    assert np.abs(unmasked - batched).max() > 1e-3


def test_examples_shorter_than_the_largest_filter_work(model):
    x = np.random.default_rng(1).normal(size=(2, 2, DIM))
    out = score(model, x, [1, 2])
    assert out.shape == (2,) and np.all(np.isfinite(out)) and np.all((out > 0) & (out < 1))


def test_masked_max_pool_ignores_windows_in_padding():
    conv = np.array([[[1.0], [2.0], [9.0]], [[5.0], [0.5], [7.0]]], dtype=np.float32)
    pooled = cnn.MaskedGlobalMaxPool(kernel_size=2)([conv, np.array([3, 2], np.int32)])
    # length 3, height 2 -> windows 0..1; length 2 -> window 0 only
    np.testing.assert_array_equal(np.asarray(pooled)[:, 0], [2.0, 5.0])


def test_saved_model_loads_in_safe_mode_with_same_scores(model, tmp_path):
    x = np.random.default_rng(2).normal(size=(3, 7, DIM))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(score(loaded, x, [7, 4, 2]), score(model, x, [7, 4, 2]), rtol=1e-6)


def test_l2_follows_keras_convention():
    m = cnn.build_cnn(dim=DIM, filter_sizes=(2,), filters=3, dropout=0.0, l2=0.5)
    kernels = [m.get_layer("conv_2").kernel, m.get_layer("score").kernel]
    expected = sum(0.5 * float(np.sum(np.square(np.asarray(k)))) for k in kernels)
    assert float(sum(np.asarray(loss) for loss in m.losses)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dim": 0}, "dim must be a positive integer, got 0"),
        ({"filter_sizes": []}, "filter_sizes must be a non-empty list"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ({"l2": -1.0}, "l2 must be >= 0"),
    ],
)
def test_bad_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cnn.build_cnn(**{"dim": DIM, **kwargs})


def test_saved_model_is_byte_reproducible_and_loads(tmp_path):
    import time

    def build() -> keras.Model:
        # a new model with the same weights, shared regularizer and names, as a rerun makes
        keras.utils.set_random_seed(3)
        shared = keras.regularizers.L2(0.001)
        inputs = keras.Input((4,), name="x")
        hidden = keras.layers.Dense(3, kernel_regularizer=shared, name="a")(inputs)
        outputs = keras.layers.Dense(2, kernel_regularizer=shared, name="b")(hidden)
        model = keras.Model(inputs, outputs, name="m")
        model.compile(optimizer=keras.optimizers.Adam(name="adam"), loss="mse")
        model.optimizer.build(model.trainable_variables)
        return model

    first = build()
    cnn.save_model(first, tmp_path / "first.keras")
    time.sleep(1.1)  # Keras stamps the save time to the second
    cnn.save_model(build(), tmp_path / "second.keras")
    assert (tmp_path / "first.keras").read_bytes() == (tmp_path / "second.keras").read_bytes()
    loaded = keras.saving.load_model(tmp_path / "first.keras", safe_mode=True)
    x = np.arange(8, dtype="float32").reshape(2, 4)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), first.predict(x, verbose=0))
    for name in ("a", "b"):  # the renumbered shared regularizer loads as before
        assert loaded.get_layer(name).kernel_regularizer.get_config() == {"l2": 0.001}
    keras.saving.KerasFileEditor(str(tmp_path / "first.keras")).summary()  # reads date_saved


def test_load_model_is_uncompiled_and_refuses_unsafe_layers(tmp_path):
    x = np.random.default_rng(4).normal(size=(2, 6, DIM))
    model = cnn.build_cnn(dim=DIM, filter_sizes=SIZES, filters=4, seed=1)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    cnn.save_model(model, tmp_path / modeldir.MODEL_FILE)
    loaded = cnn.load_model(tmp_path / modeldir.MODEL_FILE)
    assert not loaded.compiled  # scoring needs no optimizer, loss or metrics
    np.testing.assert_allclose(score(loaded, x, [6, 3]), score(model, x, [6, 3]), rtol=1e-6)

    inputs = keras.Input((4,))
    unsafe = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    unsafe.save(tmp_path / "unsafe.keras")
    with pytest.raises(ValueError, match="safe_mode"):
        cnn.load_model(tmp_path / "unsafe.keras")


def test_loading_a_model_in_a_fresh_process_keeps_tensorflow_quiet(tmp_path):
    """``modeldir.load_model`` is how bundle, evaluate and score bring TensorFlow in: with
    oneDNN on, TensorFlow's C++ start-up lines must not reach stderr (the bundle stage printed
    them while dsprior.cnn was imported before ``runtime.quiet_tensorflow``)."""
    import os
    import subprocess
    import sys

    from tests.factories import save_model

    save_model(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    env["TF_ENABLE_ONEDNN_OPTS"] = "1"  # the oneDNN line is the one TF prints at any log level
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from dsprior import modeldir; "
         "print(modeldir.model_dim(modeldir.load_model(sys.argv[1])))",
         str(tmp_path / "model.keras")],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert loaded.stdout.strip() != ""
    assert loaded.stderr == ""

"""The pooled logistic baseline (dsprior/pooled_logistic.py): pooling, fit, JSON round trip,
and scoring through the same batches as the CNN, without TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dsprior import batches, modeldir, pooled_logistic
from tests.factories import TRAIN_DIM, make_data


def test_pool_rows_is_the_mean_then_the_max_of_the_rows():
    rows = np.array([[1.0, -2.0, 0.5], [3.0, 4.0, -1.5]], dtype=np.float16)
    got = pooled_logistic.pool_rows(rows)
    np.testing.assert_array_equal(got, [2.0, 1.0, -0.5, 3.0, 4.0, 0.5])
    assert got.dtype == np.float64


def test_pool_padded_ignores_the_padding_and_equals_pooling_each_example():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(n, 3)).astype(np.float16) for n in (1, 4, 2)]
    features, lengths = batches.pad_batch(arrays, dim=3)
    features[0, 1:] = 100.0  # padding that counted would move the mean and the max
    got = pooled_logistic.pool_padded(features, lengths)
    want = np.stack([pooled_logistic.pool_rows(a) for a in arrays])
    np.testing.assert_array_equal(got, want)


def test_an_example_without_rows_is_refused():
    with pytest.raises(
        ValueError, match=r"needs a \(n_rows >= 1, dim\) array of rows, got \(0, 3\)"
    ):
        pooled_logistic.pool_rows(np.zeros((0, 3)))


def fitted(seed: int = 0) -> pooled_logistic.PooledLogistic:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(80, 8))
    y = (x[:, 0] + 0.5 * rng.normal(size=80) > 0).astype(int)
    w = np.where(y == 1, 1.0, 3.0)
    return pooled_logistic.fit_pooled_logistic(x, y, w, dim=4, c=1.0, max_iter=200)


def test_the_fit_learns_the_signal_and_its_log_odds_are_the_standardised_linear_map():
    model = fitted()
    x = np.random.default_rng(1).normal(size=(5, 8))
    want = ((x - model.mean) / model.scale) @ model.coef + model.intercept
    np.testing.assert_allclose(model.log_odds(x), want, rtol=1e-13)
    one_by_one = np.concatenate([model.log_odds(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_array_equal(model.log_odds(x), one_by_one)  # whatever the batch
    assert np.argmax(np.abs(model.coef)) == 0  # the feature that carries the label


def test_save_load_round_trip_gives_identical_log_odds_and_bytes(tmp_path: Path):
    model = fitted()
    path = tmp_path / "pooled_logistic.json"
    pooled_logistic.save_model(model, path)
    loaded = modeldir.load_model(path)  # by its file name, as bundle and score load it
    x = np.random.default_rng(2).normal(size=(20, 8))
    np.testing.assert_array_equal(loaded.log_odds(x), model.log_odds(x))
    again = tmp_path / "again.json"
    pooled_logistic.save_model(loaded, again)
    assert again.read_bytes() == path.read_bytes()
    assert "pickle" not in path.read_text() and json.loads(path.read_text())["dim"] == 4


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format="other"), "not a pooled logistic model"),
        (lambda d: d.update(format_version=9), "format_version 9 is not supported"),
        (lambda d: d.update(coef=[1.0]), r"coef must hold 8 finite numbers \(2 x dim 4\)"),
        (lambda d: d["scaler"].update(scale=[0.0] * 8), "scale must be > 0"),
        (lambda d: d.pop("intercept"), "lacks or mistypes 'intercept'"),
    ],
)
def test_a_bad_model_file_is_refused_by_name(tmp_path: Path, edit, message):
    data = fitted().as_dict()
    edit(data)
    path = tmp_path / "pooled_logistic.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message) as caught:
        pooled_logistic.load_model(path)
    assert str(path) in str(caught.value)


def test_training_streams_the_dataset_and_scores_through_the_shared_batches(tmp_path: Path):
    """Trained from the dataset on disk; evaluate's path (``batches.predict_scores``, padded
    length buckets) gives the log-odds of the pooled features training saw, bit for bit."""
    from dsprior.training.pooled_logistic import pooled_features, train_pooled_logistic
    from tests.factories import TINY

    dataset, manifest = make_data(tmp_path)
    params = {**TINY, "model": "pooled_logistic"}
    model, record = train_pooled_logistic(
        dataset_dir=dataset, manifest=manifest, params=params, live_dir=tmp_path / "live"
    )
    assert record["model"] == "pooled_logistic" and record["dim"] == TRAIN_DIM
    kept = manifest[manifest["kept"] & (manifest["split"] == "train")]
    assert record["sampling"]["train_examples"] == len(kept)
    assert 0 < record["beta"] <= 1
    index = batches.index_dataset(dataset)
    ids = manifest["example_id"].tolist()[::-1]
    want = model.log_odds(pooled_features(index, ids))
    got = batches.predict_scores(model, dataset, ids, batch_size=7)
    np.testing.assert_array_equal(got, want)
    summary = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert summary["best_step"] == 1 and set(summary["dev_a"]) == {"sampled", "prior"}
    assert (tmp_path / "live/plots/metrics/train/loss.tsv").is_file()


def test_training_and_scoring_the_baseline_never_import_tensorflow(tmp_path: Path):
    code = f"""
import sys
from pathlib import Path
from dsprior import batches, pooled_logistic
from dsprior.training.pooled_logistic import train_pooled_logistic
from tests.factories import TINY, make_data
root = Path({str(tmp_path)!r})
dataset, manifest = make_data(root)
model, _ = train_pooled_logistic(dataset_dir=dataset, manifest=manifest,
    params={{**TINY, "model": "pooled_logistic"}}, live_dir=root / "live")
batches.predict_scores(model, dataset, manifest["example_id"].tolist(), batch_size=8)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd()
    )
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"model": "forest"},
            r"train\.model must be one of \['cnn', 'pooled_logistic'\], got 'forest'",
        ),
        ({"pooled_logistic": {"C": 0, "max_iter": 10}}, r"train\.pooled_logistic\.C must be .*> 0"),
        ({"pooled_logistic": {"C": 1.0}}, r"train\.pooled_logistic\.max_iter is required"),
        (
            {"pooled_logistic": {"C": 1.0, "max_iter": 10, "tol": 1}},
            r"train\.pooled_logistic\.tol: unknown key",
        ),
    ],
)
def test_bad_model_params_are_refused_with_the_key_path(change, message):
    from dsprior.training.params import resolve_params
    from tests.factories import TINY

    with pytest.raises(ValueError, match=message):
        resolve_params({**TINY, **change})

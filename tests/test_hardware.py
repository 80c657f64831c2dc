"""Hardware-aware compute: the rule (pure), what train.json and metrics.json record,
determinism under auto, and a bf16-trained model scored in float32."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import yaml

from dsprior import cnn, hardware, modeldir, runtime
from dsprior.evaluation import run as evaluation_run
from dsprior.training.loop import train_model
from dsprior.training.params import resolve_params
from tests.conftest import ROOT
from tests.factories import TINY, make_data

BF16 = {"fpu", "avx2", "avx512f", "avx512_bf16"}
AMX = {"avx2", "amx_bf16", "amx_tile"}
NO_BF16 = {"fpu", "avx2", "avx512f"}


def resolve(precision="auto", onednn="auto", flags=BF16, gpu=False, **kw):
    return hardware.resolve_compute(precision, onednn, flags, gpu, **kw)


# ----------------------------------------------------------------------------- the rule


@pytest.mark.parametrize("flags", [BF16, AMX], ids=["avx512_bf16", "amx_bf16"])
def test_auto_with_native_bf16_is_onednn_and_bf16(flags):
    c = resolve(flags=flags)
    assert (c.precision, c.onednn, c.device, c.native_bf16) == ("mixed_bfloat16", True, "cpu", True)
    assert (c.precision_source, c.onednn_source, c.onednn_env) == ("auto", "auto", "1")


def test_auto_without_native_bf16_is_float32_onednn_off():
    c = resolve(flags=NO_BF16)
    assert (c.precision, c.onednn, c.native_bf16, c.onednn_env) == ("float32", False, False, "0")
    assert c.cpu_flags == ("avx2", "avx512f")
    assert resolve(flags=()).precision == "float32"  # no /proc/cpuinfo: the safe choice


@pytest.mark.parametrize("flags", [BF16, NO_BF16])
def test_auto_on_gpu_is_float32_onednn_off(flags):
    c = resolve(flags=flags, gpu=True)
    assert (c.precision, c.onednn, c.device) == ("float32", False, "gpu")
    assert c.reason.startswith("GPU present")


def test_params_override_precision_and_onednn():
    c = resolve("float32", flags=BF16)
    assert (c.precision, c.precision_source, c.onednn, c.onednn_source) == (
        "float32",
        "params",
        True,
        "auto",
    )
    c = resolve("mixed_bfloat16", flags=NO_BF16)  # asked for: honoured (and warned about)
    assert (c.precision, c.onednn) == ("mixed_bfloat16", False)
    c = resolve(onednn="on", flags=NO_BF16)
    assert (c.onednn, c.onednn_source, c.precision) == (True, "params", "float32")
    # oneDNN off: bf16 would be emulated, so auto precision falls back to float32
    c = resolve(onednn="off", flags=BF16)
    assert (c.onednn, c.precision) == (False, "float32")


@pytest.mark.parametrize(
    ("env", "onednn", "flags", "want_onednn", "want_precision"),
    [
        ("0", "auto", BF16, False, "float32"),
        ("false", "on", BF16, False, "float32"),
        ("1", "off", BF16, True, "mixed_bfloat16"),
        ("1", "auto", NO_BF16, True, "float32"),
        ("TRUE", "auto", NO_BF16, True, "float32"),
    ],
)
def test_environment_wins_over_params(env, onednn, flags, want_onednn, want_precision):
    c = resolve(onednn=onednn, flags=flags, env_onednn=env)
    assert (c.onednn, c.onednn_source, c.precision) == (want_onednn, "environment", want_precision)
    assert env in c.reason


def test_empty_environment_is_unset_and_nonsense_is_refused():
    assert resolve(env_onednn="").onednn_source == "auto"
    with pytest.raises(ValueError, match="TF_ENABLE_ONEDNN_OPTS must be 0, 1, true or false"):
        resolve(env_onednn="maybe")


def test_imported_tensorflow_wins_and_is_recorded():
    c = resolve(imported_onednn=False)  # wanted on, TensorFlow already runs without it
    assert (c.onednn, c.onednn_source, c.precision) == (False, "tensorflow", "float32")
    assert "wanted on" in c.reason
    same = resolve(imported_onednn=True)
    assert (same.onednn, same.onednn_source) == (True, "auto")


@pytest.mark.parametrize(
    ("model", "flags", "want"),
    [
        ("float32", BF16, "float32"),  # never score a float32 model in bf16 on auto
        ("mixed_bfloat16", BF16, "mixed_bfloat16"),
        ("mixed_bfloat16", NO_BF16, "float32"),  # bf16 model on a CPU without bf16
    ],
)
def test_inference_precision_follows_the_model(model, flags, want):
    assert resolve(flags=flags, model_precision=model).precision == want
    assert resolve("float32", flags=flags, model_precision=model).precision == "float32"


# The auto rule's truth table: machine (native bf16?, GPU?) x the onednn param, precision auto.
# oneDNN is on where asked, or on auto on a CPU with native bf16; bf16 only there, oneDNN on
# and no GPU. The GPU rows with oneDNN forced on are where "native bf16 + oneDNN" alone would
# wrongly pick bf16.
AUTO_RULE = [
    # flags, gpu, onednn, want oneDNN, want precision
    (BF16, False, "auto", True, "mixed_bfloat16"),
    (BF16, False, "on", True, "mixed_bfloat16"),
    (BF16, False, "off", False, "float32"),
    (BF16, True, "auto", False, "float32"),
    (BF16, True, "on", True, "float32"),
    (BF16, True, "off", False, "float32"),
    (NO_BF16, False, "auto", False, "float32"),
    (NO_BF16, False, "on", True, "float32"),
    (NO_BF16, False, "off", False, "float32"),
    (NO_BF16, True, "auto", False, "float32"),
    (NO_BF16, True, "on", True, "float32"),
    (NO_BF16, True, "off", False, "float32"),
]


def _rule_id(row) -> str:
    flags, gpu, onednn, *_ = row
    return f"{'bf16' if flags is BF16 else 'no_bf16'}-{'gpu' if gpu else 'cpu'}-onednn_{onednn}"


@pytest.mark.parametrize(
    ("flags", "gpu", "onednn", "want_onednn", "want_precision"),
    AUTO_RULE,
    ids=[_rule_id(row) for row in AUTO_RULE],
)
def test_auto_precision_truth_table(flags, gpu, onednn, want_onednn, want_precision):
    c = resolve(onednn=onednn, flags=flags, gpu=gpu)
    assert (c.onednn, c.precision, c.precision_source) == (want_onednn, want_precision, "auto")
    assert c.device == ("gpu" if gpu else "cpu")
    # a model trained in bf16 is scored in bf16 exactly where auto would train in bf16
    scored = resolve(onednn=onednn, flags=flags, gpu=gpu, model_precision="mixed_bfloat16")
    assert scored.precision == want_precision
    # a float32 model is never scored in bf16 on auto
    assert resolve(onednn=onednn, flags=flags, gpu=gpu, model_precision="float32").precision == (
        "float32"
    )


@pytest.mark.parametrize(
    "way",
    [{"onednn": "on"}, {"env_onednn": "1"}, {"imported_onednn": True}],
    ids=["params", "environment", "tensorflow"],
)
def test_auto_is_float32_on_a_gpu_with_native_bf16_however_onednn_came_on(way):
    c = resolve(flags=BF16 | AMX, gpu=True, **way)
    assert (c.onednn, c.device, c.native_bf16, c.precision) == (True, "gpu", True, "float32")
    assert c.reason.endswith("float32: auto (GPU)")


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve("bfloat16")
    with pytest.raises(ValueError, match="onednn must be one of"):
        resolve(onednn="yes")


def test_same_inputs_same_choice():
    assert resolve() == resolve()
    assert resolve().record() == json.loads(json.dumps(resolve().record()))


# ----------------------------------------------------------------------------- the readers


def test_read_cpu_flags_and_model(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx512f avx512_bf16\n\n"
        "processor\t: 1\nflags\t\t: fpu avx512f avx512_bf16\n"
    )
    assert hardware.read_cpu_flags(info) == {"fpu", "avx512f", "avx512_bf16"}
    assert hardware.cpu_model(info) == "Test CPU 9000"
    assert hardware.read_cpu_flags(tmp_path / "missing") == frozenset()
    assert hardware.cpu_model(tmp_path / "missing") is None


def test_detect_gpu(tmp_path):
    assert not hardware.detect_gpu({}, dev=tmp_path)
    (tmp_path / "nvidiactl").touch()
    assert not hardware.detect_gpu({}, dev=tmp_path)  # the control node alone is no GPU
    (tmp_path / "nvidia0").touch()
    assert hardware.detect_gpu({}, dev=tmp_path)
    assert not hardware.detect_gpu({"CUDA_VISIBLE_DEVICES": "-1"}, dev=tmp_path)
    assert not hardware.detect_gpu({"CUDA_VISIBLE_DEVICES": ""}, dev=tmp_path)


def test_user_environment_is_told_from_our_default():
    env = hardware.ONEDNN_ENV
    assert hardware.user_onednn_env({}) is None
    assert hardware.user_onednn_env({env: "1"}) == "1"
    assert hardware.user_onednn_env({env: "0", hardware.MARKER_ENV: "0"}) is None
    assert hardware.user_onednn_env({env: "1", hardware.MARKER_ENV: "0"}) == "1"


# ----------------------------------------------------------------------------- train, evaluate


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("hw_data"))


def run_train(data, root, **overrides):
    dataset, manifest = data
    return train_model(
        dataset_dir=dataset,
        manifest=manifest,
        config=resolve_params({**TINY, "epochs": 1, **overrides}),
        live_dir=root / "live",
        backup_dir=root / "backup",
    )


def test_train_records_the_choice_and_auto_is_deterministic(data, tmp_path):
    model_a, rec_a = run_train(data, tmp_path / "a", precision="auto", onednn="auto")
    model_b, rec_b = run_train(data, tmp_path / "b", precision="auto", onednn="auto")
    compute = rec_a["compute"]
    expected = hardware.resolve_compute(
        "auto",
        "auto",
        hardware.read_cpu_flags(),
        False,
        env_onednn=hardware.user_onednn_env(),
        imported_onednn=hardware.tensorflow_onednn(),
    )
    assert {k: compute[k] for k in expected.record()} == expected.record()
    assert compute["onednn"] == hardware.tensorflow_onednn()  # what TensorFlow really runs
    assert compute["cpu_model"] == hardware.cpu_model()
    assert cnn.model_precision(model_a) == compute["precision"]
    assert rec_a["compute"] == rec_b["compute"]
    assert rec_a["best_value"] == rec_b["best_value"]
    for wa, wb in zip(model_a.get_weights(), model_b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    keras.mixed_precision.set_dtype_policy("float32")


def test_bf16_trained_model_scores_in_float32(data, tmp_path):
    dataset, manifest = data
    model, rec = run_train(data, tmp_path / "bf16", precision="mixed_bfloat16")
    keras.mixed_precision.set_dtype_policy("float32")
    assert rec["compute"]["precision"] == "mixed_bfloat16"
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    cnn.save_model(model, model_dir / modeldir.MODEL_FILE)
    runtime.write_json(model_dir / modeldir.TRAIN_RECORD, rec)  # names the model's kind
    ids = manifest["example_id"].tolist()
    kw = {"batch_size": 8, "min_rows": max(TINY["filter_sizes"])}

    as_bf16: dict = {}
    bf16 = evaluation_run.score_examples(
        model_dir, dataset, ids, precision="mixed_bfloat16", compute_record=as_bf16, **kw
    )
    as_f32: dict = {}
    f32 = evaluation_run.score_examples(
        model_dir, dataset, ids, precision="float32", compute_record=as_f32, **kw
    )
    assert as_bf16["model_trained_in"] == as_f32["model_trained_in"] == "mixed_bfloat16"
    assert (as_bf16["precision"], as_f32["precision"]) == ("mixed_bfloat16", "float32")
    assert np.isfinite(f32).all()
    assert np.abs(f32 - bf16).max() < 0.02  # bf16 keeps ~3 significant digits
    assert np.corrcoef(f32, bf16)[0, 1] > 0.999

    # float32 scoring is exactly a float32 build of the same weights
    loaded = keras.saving.load_model(model_dir / "model.keras", safe_mode=True)
    f32_model = cnn.with_precision(loaded, "float32")
    assert {layer.dtype_policy.name for layer in f32_model.layers} == {"float32"}
    assert cnn.with_precision(f32_model, "float32") is f32_model
    reference = cnn.build_cnn(
        dim=16, filter_sizes=TINY["filter_sizes"], filters=TINY["filters"], dropout=0.1, l2=0.0
    )
    reference.set_weights(loaded.get_weights())
    batch = {
        "features": np.random.default_rng(1).normal(size=(4, 9, 16)).astype("float32"),
        "lengths": np.array([9, 7, 5, 3], dtype="int32"),
    }
    np.testing.assert_array_equal(
        f32_model.predict_on_batch(batch), reference.predict_on_batch(batch)
    )
    # back to bf16 for inference on a bf16 machine: the output layer stays float32
    bf16_model = cnn.with_precision(f32_model, "mixed_bfloat16")
    assert cnn.model_precision(bf16_model) == "mixed_bfloat16"
    assert bf16_model.get_layer(cnn.OUTPUT_LAYER).dtype_policy.name == "float32"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("onednn", "env", "want", "source"),
    [
        ("on", None, True, "params"),
        ("off", None, False, "params"),
        ("on", "0", False, "environment"),
    ],
)
def test_stage_sets_onednn_before_tensorflow_starts(data, tmp_path, onednn, env, want, source):
    """`python -m stages.train` applies train.onednn before importing TensorFlow."""
    dataset, manifest = data
    manifest.to_parquet(tmp_path / "manifest.parquet")
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump({"train": {**TINY, "epochs": 1, "precision": "float32", "onednn": onednn}})
    )
    environ = {
        k: v for k, v in os.environ.items() if k not in (hardware.ONEDNN_ENV, hardware.MARKER_ENV)
    }
    if env is not None:
        environ[hardware.ONEDNN_ENV] = env
    cmd = [
        sys.executable, "-m", "stages.train", "--params", str(params), "--dataset", str(dataset),
        "--manifest", str(tmp_path / "manifest.parquet"), "--model-dir", str(tmp_path / "models"),
        "--live-dir", str(tmp_path / "live"), "--backup-dir", str(tmp_path / "backup"),
    ]  # fmt: skip
    subprocess.run(cmd, cwd=ROOT, env=environ, check=True, capture_output=True)
    compute = json.loads((tmp_path / "models" / "train.json").read_text())["compute"]
    assert (compute["onednn"], compute["onednn_source"]) == (want, source)


# ----------------------------------------------------------------------------- the reasons, in words


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        (
            {},
            "CPU with native bf16; oneDNN on: auto; mixed_bfloat16: auto (native bf16 with oneDNN)",
        ),
        (
            {"flags": NO_BF16},
            "CPU without native bf16; oneDNN off: auto; float32: auto (no native bf16)",
        ),
        ({"onednn": "off"}, "CPU with native bf16; oneDNN off: params; float32: auto (oneDNN off)"),
        ({"gpu": True}, "GPU present; oneDNN off: auto; float32: auto (GPU)"),
        ({"precision": "float32"}, "CPU with native bf16; oneDNN on: auto; float32: params"),
        (
            {"model_precision": "float32"},
            "CPU with native bf16; oneDNN on: auto; float32: auto (model trained in float32)",
        ),
        (
            {"env_onednn": " 1 "},
            "CPU with native bf16; oneDNN on: TF_ENABLE_ONEDNN_OPTS= 1  in the environment; "
            "mixed_bfloat16: auto (native bf16 with oneDNN)",
        ),
        (
            {"imported_onednn": False},
            "CPU with native bf16; oneDNN off: TensorFlow was imported with it off "
            "(auto wanted on); float32: auto (oneDNN off)",
        ),
        (
            {"flags": NO_BF16, "imported_onednn": 1},
            "CPU without native bf16; oneDNN on: TensorFlow was imported with it on "
            "(auto wanted off); float32: auto (no native bf16)",
        ),
    ],
)
def test_the_reason_says_what_decided_each_choice(kw, reason):
    """train.json and metrics.json record ``reason``: each part names the rule that applied."""
    assert resolve(**kw).reason == reason


def test_the_record_is_every_field_with_flags_as_a_list():
    c = resolve(flags={"AVX2", "Avx512_BF16", "amx_tile", "sse4_2"}, imported_onednn=1)
    assert c.record() == {
        "precision": "mixed_bfloat16",
        "onednn": True,
        "device": "cpu",
        "native_bf16": True,
        "precision_source": "auto",
        "onednn_source": "auto",
        "cpu_flags": ["avx2", "avx512_bf16", "amx_tile"],  # REPORTED_FLAGS' order, lower case
        "reason": "CPU with native bf16; oneDNN on: auto; "
        "mixed_bfloat16: auto (native bf16 with oneDNN)",
    }
    assert resolve(onednn="on", flags=NO_BF16, imported_onednn=True).onednn_source == "params"


@pytest.mark.parametrize(
    ("value", "want"),
    [(None, None), ("", None), (" \t", None), ("1", True), (" True ", True), ("0", False)]
    + [("FALSE", False)],
)
def test_onednn_environment_is_read_as_tensorflow_reads_it(value, want):
    assert hardware.parse_onednn_env(value) is want


def test_bad_settings_are_refused_naming_what_is_allowed():
    with pytest.raises(ValueError) as err:
        hardware.parse_onednn_env("2")
    assert str(err.value) == "TF_ENABLE_ONEDNN_OPTS must be 0, 1, true or false, got '2'"
    with pytest.raises(ValueError) as err:
        resolve("bf16")
    assert str(err.value) == (
        "precision must be one of ['auto', 'float32', 'mixed_bfloat16'], got 'bf16'"
    )
    with pytest.raises(ValueError) as err:
        resolve(onednn="On")
    assert str(err.value) == "onednn must be one of ['auto', 'on', 'off'], got 'On'"
    with pytest.raises(ValueError) as err:
        resolve(model_precision="auto")
    assert str(err.value) == "model_precision must be float32 or mixed_bfloat16, got 'auto'"


def test_arm_features_and_untrimmed_keys_are_read(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nmodel name:  Arm CPU  \nFeatures\t: fp asimd bf16\n")
    assert hardware.read_cpu_flags(info) == {"fp", "asimd", "bf16"}
    assert hardware.cpu_model(info) == "Arm CPU"
    info.write_text("flags : a b\n")
    assert hardware.read_cpu_flags(info) == {"a", "b"}
    assert hardware.cpu_model(info) is None


def test_a_visible_gpu_is_detected_and_the_environment_read_by_default(tmp_path, monkeypatch):
    (tmp_path / "nvidia12").touch()
    assert hardware.detect_gpu({"CUDA_VISIBLE_DEVICES": "0"}, dev=tmp_path)
    assert not hardware.detect_gpu({"CUDA_VISIBLE_DEVICES": " -1 "}, dev=tmp_path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert not hardware.detect_gpu(dev=tmp_path)
    monkeypatch.setenv(hardware.ONEDNN_ENV, "1")
    monkeypatch.delenv(hardware.MARKER_ENV, raising=False)
    assert hardware.user_onednn_env() == "1"


def test_apply_onednn_sets_the_variable_and_its_marker_unless_a_person_did(monkeypatch):
    monkeypatch.delenv(hardware.ONEDNN_ENV, raising=False)
    monkeypatch.delenv(hardware.MARKER_ENV, raising=False)
    hardware.apply_onednn(resolve(flags=NO_BF16))
    assert (os.environ[hardware.ONEDNN_ENV], os.environ[hardware.MARKER_ENV]) == ("0", "0")
    hardware.apply_onednn(resolve())  # our own default: replaced
    assert (os.environ[hardware.ONEDNN_ENV], os.environ[hardware.MARKER_ENV]) == ("1", "1")
    monkeypatch.setenv(hardware.ONEDNN_ENV, "0")  # a person's: kept
    hardware.apply_onednn(resolve())
    assert (os.environ[hardware.ONEDNN_ENV], os.environ[hardware.MARKER_ENV]) == ("0", "1")


@pytest.mark.parametrize(
    ("kw", "warning"),
    [
        ({"precision": "mixed_bfloat16", "flags": NO_BF16, "onednn": "on"}, "native bf16"),
        ({"precision": "mixed_bfloat16", "onednn": "off"}, "oneDNN"),
    ],
)
def test_emulated_bf16_is_warned_about(kw, warning, caplog):
    with caplog.at_level("WARNING", logger=hardware.__name__):
        hardware.warn_if_emulated(resolve(**kw))
        hardware.warn_if_emulated(resolve())  # native bf16 with oneDNN: no warning
        hardware.warn_if_emulated(resolve(flags=NO_BF16))  # float32: no warning
    assert [r.getMessage() for r in caplog.records] == [
        f"mixed_bfloat16 without {warning}: bf16 is emulated here and many times slower"
    ]


def test_machine_compute_reads_this_machine(monkeypatch, caplog):
    monkeypatch.setattr(hardware, "read_cpu_flags", lambda: frozenset(NO_BF16))
    monkeypatch.setattr(hardware, "detect_gpu", lambda: False)
    monkeypatch.setattr(hardware, "tensorflow_onednn", lambda: None)
    monkeypatch.setenv(hardware.ONEDNN_ENV, "1")
    monkeypatch.delenv(hardware.MARKER_ENV, raising=False)
    with caplog.at_level("WARNING", logger=hardware.__name__):
        c = hardware.machine_compute("mixed_bfloat16", "off", model_precision="float32")
    assert c == resolve("mixed_bfloat16", "off", NO_BF16, env_onednn="1", model_precision="float32")
    assert "emulated" in caplog.text
    assert hardware.machine_compute("auto", "auto", model_precision="float32").precision == (
        "float32"
    )


def test_tensorflow_reports_whether_it_runs_with_onednn():
    """TensorFlow is imported here (keras): its answer is a bool, what train.json records."""
    assert isinstance(hardware.tensorflow_onednn(), bool)


def test_a_tensorflow_without_the_private_api_is_unknown(monkeypatch):
    from tensorflow.python.util import _pywrap_util_port

    def absent():
        raise AttributeError("IsMklEnabled")

    monkeypatch.setattr(_pywrap_util_port, "IsMklEnabled", absent)
    assert hardware.tensorflow_onednn() is None


def test_machine_compute_passes_on_the_gpu_tensorflow_and_the_model(monkeypatch):
    """Each of this machine's facts reaches the rule: a GPU, TensorFlow's own oneDNN answer
    (once imported), and the precision the model was trained in."""
    monkeypatch.setattr(hardware, "read_cpu_flags", lambda: frozenset(BF16))
    monkeypatch.setattr(hardware, "detect_gpu", lambda: True)
    monkeypatch.setattr(hardware, "tensorflow_onednn", lambda: True)
    monkeypatch.delenv(hardware.ONEDNN_ENV, raising=False)
    c = hardware.machine_compute("auto", "auto")
    assert (c.device, c.onednn, c.onednn_source) == ("gpu", True, "tensorflow")
    monkeypatch.setattr(hardware, "detect_gpu", lambda: False)
    assert hardware.machine_compute("auto", "auto").precision == "mixed_bfloat16"
    assert hardware.machine_compute("auto", "auto", model_precision="float32").precision == (
        "float32"
    )


def test_a_cpuinfo_value_holding_a_colon_is_read_whole(tmp_path):
    """cpuinfo lines are ``key : value``; a value may hold ``:`` itself, so only the first one
    splits (a model name like "Foo: Bar", a flag list after a key)."""
    info = tmp_path / "cpuinfo"
    info.write_text("model name\t: Vendor CPU: rev 2\nflags\t\t: fpu avx512_bf16 x:y\n")
    assert hardware.cpu_model(info) == "Vendor CPU: rev 2"
    assert hardware.read_cpu_flags(info) == frozenset({"fpu", "avx512_bf16", "x:y"})


def test_start_tensorflow_sets_onednn_before_tensorflow_reads_it():
    """In a fresh process: the params' oneDNN choice is what the imported TensorFlow runs."""
    code = (
        "import sys; from dsprior import hardware; "
        "c = hardware.start_tensorflow(precision='float32', onednn='on'); "
        "print('tensorflow' in sys.modules, c.onednn, hardware.tensorflow_onednn())"
    )
    environ = {
        k: v for k, v in os.environ.items() if k not in (hardware.ONEDNN_ENV, hardware.MARKER_ENV)
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environ,
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stdout.split() == ["True", "True", "True"]


def test_detect_gpu_looks_for_the_driver_nodes_in_dev_by_default(monkeypatch, tmp_path):
    """The NVIDIA driver's device nodes live in /dev: that is where the default looks."""
    looked = []

    def fake_path(where):
        looked.append(str(where))
        return tmp_path

    monkeypatch.setattr(hardware, "Path", fake_path)
    (tmp_path / "nvidia3").touch()
    assert hardware.detect_gpu({})
    assert looked == ["/dev"]


def test_choosing_the_compute_does_not_import_tensorflow():
    """Before TensorFlow is imported, machine_compute asks nothing of it (oneDNN's setting
    must be made before the import; importing it here would fix it too early)."""
    code = (
        "import sys; from dsprior import hardware; "
        "c = hardware.machine_compute('auto', 'auto'); "
        "print('tensorflow' in sys.modules, c.onednn_source)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    assert out[0] == "False" and out[1] != "tensorflow"

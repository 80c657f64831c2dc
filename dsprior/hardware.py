"""Hardware-aware compute: numeric precision and oneDNN, chosen from what the machine has.

One rule for train, evaluate and score (``resolve_compute``, a pure function of the
params, the CPU flags, whether a GPU is present and the environment):

- **oneDNN** (``TF_ENABLE_ONEDNN_OPTS``): ``auto`` turns it on when the CPU has native
  bfloat16 (``avx512_bf16`` or ``amx_bf16``) and there is no GPU; otherwise off (on a CPU
  without native bf16 it was measured 1.26x slower, ``benchmarks/results/onednn.json``; on a
  GPU the model does not run on oneDNN kernels). ``on``/``off`` force it. An explicit
  ``TF_ENABLE_ONEDNN_OPTS`` in the environment wins over the params and is recorded as
  such (``onednn_source: environment``).
- **precision**: ``auto`` picks ``mixed_bfloat16`` when the CPU has native bf16, oneDNN is
  on (bf16 without oneDNN's kernels is emulated) and there is no GPU; otherwise
  ``float32``. On a GPU, ``auto`` stays ``float32``: the GPU's bf16 support is not known
  before TensorFlow starts, and float32 gives the same numbers as a CPU run. For
  inference (``model_precision`` given), ``auto`` never scores a float32-trained model in
  bf16: a model is scored in bf16 only if it was trained in bf16 and this machine would
  train in bf16; elsewhere it is scored in float32 (its weights are float32 either way).
- ``float32``/``mixed_bfloat16`` in the params force the precision (a warning is logged
  when bf16 would be emulated).

The choice comes from flags, never from timing, so it is the same on every run of the
same machine. TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, when it is imported: an
entry point's ``main()`` calls ``start_tensorflow`` once it has read its params, before
anything imports TensorFlow (``dsprior.cnn`` does). No TensorFlow import at import time.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NotRequired, TypedDict

from dsprior import runtime
from dsprior.runtime import MARKER_ENV, ONEDNN_ENV

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "mixed_bfloat16")
ONEDNN_SETTINGS = ("auto", "on", "off")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
CPUINFO = Path("/proc/cpuinfo")
_TRUE = ("1", "true")
_FALSE = ("0", "false")


@dataclass(frozen=True)
class ComputeParams:
    """A stage's ``precision`` and ``onednn`` keys as params.yaml sets them (``auto`` or a
    setting), before ``resolve_compute`` answers them for a machine."""

    precision: str  # auto | float32 | mixed_bfloat16
    onednn: str  # auto | on | off


@dataclass(frozen=True)
class Compute:
    """The resolved settings and why; ``record()`` is what train.json and metrics.json get."""

    precision: str  # float32 | mixed_bfloat16
    onednn: bool
    device: str  # cpu | gpu
    native_bf16: bool
    precision_source: str  # params | auto
    onednn_source: str  # params | auto | environment | tensorflow (imported before it was set)
    cpu_flags: tuple[str, ...]  # the flags of REPORTED_FLAGS this CPU has
    reason: str

    @property
    def onednn_env(self) -> str:
        return "1" if self.onednn else "0"

    def record(self) -> ComputeRecord:
        return {
            "precision": self.precision,
            "onednn": self.onednn,
            "device": self.device,
            "native_bf16": self.native_bf16,
            "precision_source": self.precision_source,
            "onednn_source": self.onednn_source,
            "cpu_flags": list(self.cpu_flags),
            "reason": self.reason,
        }


class ComputeRecord(TypedDict):
    """How a stage ran its model (``Compute.record``): train.json's and metrics.json's
    ``compute``."""

    precision: Annotated[str, "the Keras dtype policy used: float32 or mixed_bfloat16"]
    onednn: Annotated[bool, "whether TensorFlow's oneDNN CPU kernels were on"]
    device: Annotated[str, "cpu or gpu"]
    native_bf16: Annotated[bool, "whether the CPU computes bfloat16 natively"]
    precision_source: Annotated[str, "params (set in params.yaml) or auto (chosen here)"]
    onednn_source: Annotated[
        str, "params, auto, environment (TF_ENABLE_ONEDNN_OPTS set by a person) or tensorflow"
    ]
    cpu_flags: Annotated[list[str], "the CPU flags among REPORTED_FLAGS that this CPU has"]
    reason: Annotated[str, "the choice in words"]
    cpu_model: NotRequired[Annotated[str | None, "the CPU's model name (train.json only)"]]
    model_trained_in: NotRequired[
        Annotated[str, "the precision the model was trained in (evaluate's record only)"]
    ]


def parse_onednn_env(value: str | None) -> bool | None:
    """``TF_ENABLE_ONEDNN_OPTS`` as TensorFlow reads it: None when unset or empty."""
    if value is None or value.strip() == "":
        return None
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{ONEDNN_ENV} must be 0, 1, true or false, got {value!r}")


def resolve_compute(
    precision: str,
    onednn: str,
    cpu_flags: Iterable[str],
    has_gpu: bool,
    *,
    env_onednn: str | None = None,
    imported_onednn: bool | None = None,
    model_precision: str | None = None,
) -> Compute:
    """The precision and oneDNN setting for this machine (see the module docstring).

    ``precision`` is ``auto|float32|mixed_bfloat16``, ``onednn`` ``auto|on|off``;
    ``cpu_flags`` the CPU's flags (``read_cpu_flags``); ``env_onednn`` a
    ``TF_ENABLE_ONEDNN_OPTS`` a person set (``user_onednn_env``), which wins over the
    params; ``imported_onednn`` what an already imported TensorFlow runs with
    (``tensorflow_onednn``), which wins over everything, since it can no longer change;
    ``model_precision`` the precision a model was trained in, for inference.
    """
    _check_choices(precision, onednn, model_precision)
    flags = {f.lower() for f in cpu_flags}
    native = any(f in flags for f in NATIVE_BF16_FLAGS)
    bf16_machine = native and not has_gpu
    hw = (
        "GPU present"
        if has_gpu
        else ("CPU with native bf16" if native else "CPU without native bf16")
    )
    use_onednn, onednn_source, why = _choose_onednn(
        onednn, bf16_machine, env_onednn=env_onednn, imported_onednn=imported_onednn
    )
    chosen, precision_source, precision_why = _choose_precision(
        precision,
        bf16_machine=bf16_machine,
        native=native,
        has_gpu=has_gpu,
        use_onednn=use_onednn,
        model_precision=model_precision,
    )
    reasons = [hw, f"oneDNN {'on' if use_onednn else 'off'}: {why}", precision_why]
    return Compute(
        precision=chosen,
        onednn=use_onednn,
        device="gpu" if has_gpu else "cpu",
        native_bf16=native,
        precision_source=precision_source,
        onednn_source=onednn_source,
        cpu_flags=tuple(f for f in REPORTED_FLAGS if f in flags),
        reason="; ".join(reasons),
    )


def _check_choices(precision: str, onednn: str, model_precision: str | None) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if onednn not in ONEDNN_SETTINGS:
        raise ValueError(f"onednn must be one of {list(ONEDNN_SETTINGS)}, got {onednn!r}")
    if model_precision not in (None, "float32", "mixed_bfloat16"):
        raise ValueError(
            f"model_precision must be float32 or mixed_bfloat16, got {model_precision!r}"
        )


def _choose_onednn(
    onednn: str,
    bf16_machine: bool,
    *,
    env_onednn: str | None,
    imported_onednn: bool | None,
) -> tuple[bool, str, str]:
    """(oneDNN on, where the choice came from, why): environment, params, auto, or TensorFlow."""
    env = parse_onednn_env(env_onednn)
    if env is not None:
        use_onednn, onednn_source = env, "environment"
        why = f"{ONEDNN_ENV}={env_onednn} in the environment"
    elif onednn != "auto":
        use_onednn, onednn_source, why = onednn == "on", "params", "params"
    else:
        use_onednn, onednn_source, why = bf16_machine, "auto", "auto"
    if imported_onednn is not None and bool(imported_onednn) != use_onednn:
        # TensorFlow read the variable before this choice could apply (a test, an import)
        why = f"TensorFlow was imported with it {'on' if imported_onednn else 'off'} ({why} wanted {'on' if use_onednn else 'off'})"
        use_onednn, onednn_source = bool(imported_onednn), "tensorflow"
    return use_onednn, onednn_source, why


def _choose_precision(
    precision: str,
    *,
    bf16_machine: bool,
    native: bool,
    has_gpu: bool,
    use_onednn: bool,
    model_precision: str | None,
) -> tuple[str, str, str]:
    """(precision, where the choice came from, the reason in words)."""
    if precision != "auto":
        return precision, "params", f"{precision}: params"
    if bf16_machine and use_onednn and model_precision in (None, "mixed_bfloat16"):
        return "mixed_bfloat16", "auto", "mixed_bfloat16: auto (native bf16 with oneDNN)"
    why = (
        "model trained in float32"
        if bf16_machine and use_onednn
        else ("GPU" if has_gpu else ("oneDNN off" if native else "no native bf16"))
    )
    return "float32", "auto", f"float32: auto ({why})"


def read_cpu_flags(path: str | Path = CPUINFO) -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (x86 ``flags``, Arm ``Features``); empty elsewhere."""
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def cpu_model(path: str | Path = CPUINFO) -> str | None:
    """The CPU's model name from /proc/cpuinfo, or None."""
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip().lower() == "model name":
                    return value.strip()
    except OSError:
        pass
    return None


def detect_gpu(environ: Mapping[str, str] | None = None, dev: str | Path = "/dev") -> bool:
    """Whether an NVIDIA GPU is visible, without importing TensorFlow (cheap, no CUDA call).

    ``CUDA_VISIBLE_DEVICES`` set to empty or ``-1`` hides every GPU; otherwise a GPU is
    present when the driver exposes ``/dev/nvidia<N>``.
    """
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    try:
        return any(p.name[len("nvidia") :].isdigit() for p in Path(dev).glob("nvidia*"))
    except OSError:
        return False


def user_onednn_env(environ: Mapping[str, str] | None = None) -> str | None:
    """``TF_ENABLE_ONEDNN_OPTS`` if a person set it; None if unset or set by this code."""
    environ = os.environ if environ is None else environ
    value = environ.get(ONEDNN_ENV)
    if value is None or value == environ.get(MARKER_ENV):
        return None
    return value


def machine_compute(precision: str, onednn: str, *, model_precision: str | None = None) -> Compute:
    """``resolve_compute`` for this machine and this process's environment.

    Before TensorFlow's import this is the choice to ``apply_onednn``; after it, oneDNN is
    what TensorFlow runs with.
    """
    compute = resolve_compute(
        precision,
        onednn,
        read_cpu_flags(),
        detect_gpu(),
        env_onednn=user_onednn_env(),
        imported_onednn=tensorflow_onednn() if "tensorflow" in sys.modules else None,
        model_precision=model_precision,
    )
    warn_if_emulated(compute)
    return compute


def warn_if_emulated(compute: Compute) -> None:
    """Log a warning when bf16 was asked for where it is emulated."""
    if compute.precision == "mixed_bfloat16" and not (compute.native_bf16 and compute.onednn):
        logger.warning(
            "mixed_bfloat16 without %s: bf16 is emulated here and many times slower",
            "native bf16" if not compute.native_bf16 else "oneDNN",
        )


def apply_onednn(compute: Compute) -> None:
    """Set ``TF_ENABLE_ONEDNN_OPTS`` for ``compute`` unless a person set it; before TF's import."""
    if user_onednn_env() is None:
        os.environ[ONEDNN_ENV] = compute.onednn_env
        os.environ[MARKER_ENV] = compute.onednn_env


def start_tensorflow(*, precision: str, onednn: str) -> Compute:
    """Set oneDNN for these params and this machine, then import TensorFlow quietly; the
    choice. The one order that works: TensorFlow reads oneDNN's variable once, at import,
    so an entry point calls this before anything imports ``dsprior.cnn``."""
    compute = machine_compute(precision, onednn)
    apply_onednn(compute)
    runtime.quiet_tensorflow()
    return compute


def tensorflow_onednn() -> bool | None:
    """Whether the imported TensorFlow runs with oneDNN (its own answer), or None if unknown."""
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except Exception:  # a private API: absent in some builds
        return None

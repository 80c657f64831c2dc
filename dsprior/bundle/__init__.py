"""The model bundle: one versioned folder holding everything needed to score new examples.

The bundle stage writes it (``paths.bundle``, a single DVC output, so a teammate can
``dvc pull bundle`` alone and run ``python -m stages.score`` without the dataset, the
manifest or any other stage); the score command reads it. It holds:

- ``model.keras``: the trained model, copied byte for byte from train; Keras 3
  format with registered layers only, loaded with ``safe_mode=True`` (no
  Lambda layers, no pickles); for ``train.model: pooled_logistic``,
  ``pooled_logistic.json`` instead (coefficients in JSON, no TensorFlow to score);
- ``bundle.json``: the feature dimension and dtype the model was trained on,
  the prior correction evaluate applies (``beta`` from train, plus the prior
  shift evaluate makes when its production prior differs from the one the
  training weights restore), the production prior, the threshold chosen on
  ``dev_b`` and what it applies to (the probability at the prior), the cost
  settings, the train and evaluate params, and a content hash over all of it
  and the model's bytes;
- format 2 adds ``calibration`` (the recalibration evaluate chose, applied after
  the prior correction: ``dsprior.calibration``) and ``reference``, naming
  ``reference.parquet``: dev_b's rows (group codes, labels, weights and
  prior-corrected probabilities; dev_a's too when the recalibration was fitted
  there), which ``score --summary`` needs for the ACC/PACC cross-check, the KS
  test and intervals that include dev_b's own uncertainty. Format 1 bundles still
  load: no recalibration, and the summary reports the cross-check and KS test as
  not available;
- format 3 (issue 23) records that scores are log-odds (``scores``: the model's output
  unit's pre-activation in float64, the raw score being its sigmoid; the prior correction
  is a shift of it) and stores the threshold both as a probability (``threshold.value``)
  and as the log-odds decisions compare (``threshold.logit``). Format 1 and 2 bundles
  still load and score from the same log-odds (their model is the same network); their
  threshold's log-odds are computed from the stored probability, and ``Bundle.notes``
  (logged at load) says so: rebuild with ``dvc repro bundle``.

Modules: ``spec`` builds bundle.json and checks it against evaluate's predictions;
``reference`` writes and reads reference.parquet; ``validate`` checks every field
of a bundle.json before it is used; ``store`` writes the folder and reads it back
(``load_bundle``; ``load_bundle_spec`` without the model).

A bundle built from scores made elsewhere (``dsprior.external``) has no ``model.keras``:
its ``model`` record says ``kind: external_scores`` and what the scores are (column, scale,
what they were trained at). It maps such scores exactly as a model's log-odds, and
``load_bundle`` refuses it by name: it cannot score raw examples.
"""

from dsprior.bundle.reference import (
    REFERENCE_COLUMNS,
    REFERENCE_FILE,
    read_reference,
    reference_bytes,
    reference_record,
    reference_table,
)
from dsprior.bundle.spec import (
    FORMAT_VERSION,
    HASH_KEY,
    MODEL_FILE,
    PROBABILITY_TOLERANCE,
    READABLE_VERSIONS,
    SPEC_FILE,
    THRESHOLD_APPLIES_TO,
    build_spec,
    check_against_predictions,
    content_hash,
    format_notes,
    spec_calibration,
    spec_shift,
    spec_threshold_logit,
)
from dsprior.bundle.store import (
    Bundle,
    load_bundle,
    load_bundle_spec,
    read_spec,
    verify_contents,
    write_bundle,
)
from dsprior.bundle.validate import validate_spec
from dsprior.runtime import file_sha256  # the model and reference files are checked by it

__all__ = [
    "FORMAT_VERSION",
    "HASH_KEY",
    "MODEL_FILE",
    "PROBABILITY_TOLERANCE",
    "READABLE_VERSIONS",
    "REFERENCE_COLUMNS",
    "REFERENCE_FILE",
    "SPEC_FILE",
    "THRESHOLD_APPLIES_TO",
    "Bundle",
    "build_spec",
    "check_against_predictions",
    "content_hash",
    "file_sha256",
    "format_notes",
    "load_bundle",
    "load_bundle_spec",
    "read_reference",
    "read_spec",
    "reference_bytes",
    "reference_record",
    "reference_table",
    "spec_calibration",
    "spec_shift",
    "spec_threshold_logit",
    "validate_spec",
    "verify_contents",
    "write_bundle",
]

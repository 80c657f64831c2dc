"""The model folder (``paths.model_dir``): what train writes and evaluate and bundle read.

``MODEL_FILE`` is the Keras model (``cnn.save_model`` writes it, ``cnn.load_model`` reads
it); ``TRAIN_RECORD`` is what training knew that scoring needs (dim, beta, the training
prior, sampling rates, params, the compute it ran in). This module imports no TensorFlow,
so an entry point can read the record before it sets TensorFlow up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL_FILE = "model.keras"
TRAIN_RECORD = "train.json"


def read_train_record(model_dir: str | Path) -> dict[str, Any]:
    """The train record of a model folder."""
    return json.loads((Path(model_dir) / TRAIN_RECORD).read_text())

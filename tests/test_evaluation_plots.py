"""Plot records (``dsprior.evaluation.plots``): curves thinned so their steep stretches survive.

The records of a whole run are checked in tests/test_evaluation_pipeline.py.
"""

from __future__ import annotations

import numpy as np

from dsprior.evaluation.plots import _thin_along, _thin_on_grid


def test_thinning_keeps_the_steep_stretch_of_a_curve():
    """Evenly along the curve, not by index: a jump carried by few points keeps points."""
    x = np.concatenate([np.linspace(0, 0.1, 10_000), [0.1, 0.1, 1.0]])
    y = np.concatenate([np.zeros(10_000), [0.5, 1.0, 1.0]])
    kept = _thin_along(x, y, points=50)
    assert len(kept) <= 52 and kept[0] == 0 and kept[-1] == len(x) - 1
    assert {10_000, 10_001} <= set(kept)  # the jump's points survive
    thresholds = np.concatenate([np.geomspace(1e-12, 0.01, 10_000), [0.3, 0.6, 0.9]])
    kept = _thin_on_grid(thresholds, keep=5, points=20)
    assert {5, 10_000, 10_001, 10_002} <= set(kept) and len(kept) <= 23

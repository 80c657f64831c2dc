"""The measures of one split (``dsprior.evaluation.measures``): intervals resample whole groups."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dsprior import priors
from dsprior.evaluation.measures import bootstrap_intervals


def test_bootstrap_intervals_resample_whole_groups(monkeypatch):
    """Few large groups sharing label and decision: the group interval is far wider.

    40 groups of 25 examples each; every example of a group has its group's label and
    decision. Resampling examples would treat the 1,000 examples as independent; the
    group bootstrap sees only 40 units, so its intervals are about 5 (sqrt 25) times wider.
    """
    n_groups, size, prior, level, resamples = 40, 25, 0.1, 0.9, 400
    group_label = np.array([1] * 12 + [0] * 28)
    group_flag = np.array([1] * 8 + [0] * 4 + [1] * 6 + [0] * 22)
    codes = np.repeat(np.arange(n_groups), size)
    frame = pd.DataFrame(
        {
            "example_id": [f"e{i:04d}" for i in range(len(codes))],
            "group": [f"g{c:02d}" for c in codes],
            "label": group_label[codes].astype(np.int8),
            "weight": 1.0,
        }
    )
    y, predicted = frame["label"].to_numpy(), group_flag[codes]

    multiplicities = []
    real_bootstrap = priors.group_bootstrap

    def recording(groups, statistic, **kwargs):
        def spy(multiplicity):
            multiplicities.extend(multiplicity.copy())
            return statistic(multiplicity)

        return real_bootstrap(groups, spy, **kwargs)

    monkeypatch.setattr(priors, "group_bootstrap", recording)
    cis = bootstrap_intervals(
        frame, predicted, prior=prior, cost_fp=1, cost_fn=10,
        resamples=resamples, level=level, seed=3,
    )  # fmt: skip
    # each resample weights whole groups: one multiplicity per group, n_groups groups drawn
    assert len(multiplicities) == resamples
    for m in multiplicities:
        per_group = m.reshape(n_groups, size)
        assert (per_group == per_group[:, :1]).all()
        assert per_group[:, 0].sum() == n_groups

    # the example-level bootstrap, computed here: resample the 1,000 rows independently
    rng = np.random.default_rng(0)
    draws = {"precision": [], "recall": []}
    for _ in range(resamples):
        w = np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y)).astype(float)
        w[y == 0] *= w[y == 1].sum() / w[y == 0].sum() * (1 - prior) / prior
        tp, fp = w[(y == 1) & (predicted == 1)].sum(), w[(y == 0) & (predicted == 1)].sum()
        draws["precision"].append(tp / (tp + fp))
        draws["recall"].append(tp / w[y == 1].sum())
    alpha = (1 - level) / 2
    for name, values in draws.items():
        low, high = np.quantile(values, [alpha, 1 - alpha])
        group_low, group_high = cis[f"{name}_ci"]
        assert group_high - group_low > 3 * (high - low), (name, cis[f"{name}_ci"], (low, high))

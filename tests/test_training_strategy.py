"""Where training runs. The strategies themselves (chief, input shards, mirrored on CPU, two
workers) are tested in test_distributed."""

from __future__ import annotations

import pytest

from dsprior.training.strategy import check_global_batch, make_strategy


def test_a_global_batch_the_replicas_cannot_split_is_named():
    check_global_batch(8, replicas=4)
    with pytest.raises(ValueError, match=r"batch_size \(6\) is the global batch .* replicas \(4\)"):
        check_global_batch(6, replicas=4)


def test_an_unknown_strategy_is_named():
    with pytest.raises(ValueError, match=r"strategy must be one of \['default', 'mirrored', "):
        make_strategy("horovod")

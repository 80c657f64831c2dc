"""How the reports (evaluate's, the score summary's, monitor's) write numbers: one way.

A missing value (None) reads ``n/a``; an interval is written after its value as
``[low, high]`` and left out when either end is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MISSING = "n/a"


def number(value: Any, digits: int = 3, *, style: str = "f") -> str:
    """``value`` with ``digits`` decimals (``style="f"``) or significant digits (``"g"``)."""
    return MISSING if value is None else f"{value:.{digits}{style}}"


def percent(value: Any, digits: int = 1) -> str:
    """A share as a percentage: 0.25 -> ``25.0%``."""
    return MISSING if value is None else f"{100 * value:.{digits}f}%"


def with_interval(
    value: Any, interval: Sequence[Any] | None, digits: int = 3, *, style: str = "f"
) -> str:
    """``value [low, high]``, each as ``number`` writes it; the interval only when complete."""
    text = number(value, digits, style=style)
    if interval and None not in interval:
        low, high = interval
        text += f" [{number(low, digits, style=style)}, {number(high, digits, style=style)}]"
    return text

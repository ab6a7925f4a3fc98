"""Two figures shown side by side ("0.699 is below the threshold 0.70", "lost 33% vs 32% overall")
with just enough digits that the shown numbers order as the true ones do.

Rounding both to a fixed number of digits can make a comparison contradict itself: 0.699 against
0.70 reads "0.70 is below 0.70". Here each pair is rounded to the nearest at the fewest digits that
keep the order; a value a hair away from the other is then cut toward its own side (the lower one
rounded down, the higher one up), so rounding never crosses. Pure functions: the policy, the queue
cards and the agents' reasons share them.
"""
from __future__ import annotations

import math

_EXTRA_DIGITS = 4   # nearest rounding is tried at up to this many digits beyond the fewest
_MAX_DIGITS = 8


def _floor(x: float, digits: int) -> float:
    scale = 10 ** digits
    return math.floor(x * scale + 1e-9) / scale


def _ceil(x: float, digits: int) -> float:
    scale = 10 ** digits
    return math.ceil(x * scale - 1e-9) / scale


def _text(x: float, digits: int, min_digits: int) -> str:
    """x at `digits` decimals, trailing zeros beyond `min_digits` dropped: 0.700 -> '0.70' (min 2)."""
    text = f"{x:.{digits}f}"
    if digits > min_digits:
        keep = len(text) - (digits - min_digits)
        text = text[:keep] + text[keep:].rstrip("0")
        text = text.rstrip(".")
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text


def shown_pair(value: float, other: float, *, scale: float = 1.0, min_digits: int = 0,
               equal_if_above: bool = False) -> tuple[str, str]:
    """(value, other) times `scale` as text whose order agrees with `value` against `other`.

    `value < other` always shows a smaller first figure; `value > other` a larger one, unless
    `equal_if_above` (a reading such as "meets the threshold", where equal figures are true).
    """
    a, b = value * scale, other * scale

    def agrees(x: float, y: float) -> bool:
        if a < b:
            return x < y
        if a > b:
            return x > y or (equal_if_above and x == y)
        return x == y

    for digits in range(min_digits, min_digits + _EXTRA_DIGITS):
        x, y = round(a, digits), round(b, digits)
        if agrees(x, y):
            return _text(x, digits, min_digits), _text(y, digits, min_digits)
    for digits in range(min_digits, _MAX_DIGITS + 1):
        x = _floor(a, digits) if a < b else _ceil(a, digits)
        y = _ceil(b, digits) if a < b else _floor(b, digits)
        if agrees(x, y):
            return _text(x, digits, min_digits), _text(y, digits, min_digits)
    return repr(a), repr(b)


def compared_decimals(value: float, threshold: float) -> tuple[str, str]:
    """A confidence and its threshold as decimals (at least two digits): 0.699 and 0.70, 0.72 and 0.80."""
    return shown_pair(value, threshold, min_digits=2, equal_if_above=True)


def compared_percents(value: float, threshold: float) -> tuple[str, str]:
    """The same as percents: 0.499 against 0.50 reads '49.9%' and '50%', never '50%' below '50%'."""
    shown, limit = shown_pair(value, threshold, scale=100, equal_if_above=True)
    return f"{shown}%", f"{limit}%"


def percent_pair(value: float, other: float) -> tuple[str, str]:
    """Two rates as percents whose order is the true one, equal only when they are: '33%' vs '32%'."""
    shown, base = shown_pair(value, other, scale=100)
    return f"{shown}%", f"{base}%"

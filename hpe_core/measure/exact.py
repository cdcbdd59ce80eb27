"""Exact sums of floats, kept as an integer over a power of two.

Every float is ``n / 2**k`` for integers ``n`` and ``k``, so a sum of floats is exactly one
too; :class:`ExactSum` keeps it that way and rounds once, when read (Python's int / int
division rounds correctly), which is what ``math.fsum`` gives for the same floats. Unlike
``fsum``'s partials it can be stored, added to another sum and have terms taken away,
exactly: the hourly partial rollups (:mod:`hpe_core.measure.hours`) are added up this way
and corrected when a decision's outcomes change.
"""

from __future__ import annotations


class ExactSum:
    """The exact sum of the floats added (and taken away): ``n / 2**k``."""

    __slots__ = ("n", "k")

    def __init__(self, n: int = 0, k: int = 0):
        self.n, self.k = n, k

    def add_float(self, value: float) -> None:
        if value:
            numerator, denominator = float(value).as_integer_ratio()
            self._add(numerator, denominator.bit_length() - 1)

    def sub_float(self, value: float) -> None:
        if value:
            numerator, denominator = float(value).as_integer_ratio()
            self._add(-numerator, denominator.bit_length() - 1)

    def add(self, other: ExactSum) -> None:
        self._add(other.n, other.k)

    def sub(self, other: ExactSum) -> None:
        self._add(-other.n, other.k)

    def _add(self, n: int, k: int) -> None:
        if k > self.k:
            self.n <<= k - self.k
            self.k = k
        elif k < self.k:
            n <<= self.k - k
        self.n += n

    def value(self) -> float:
        """The sum, rounded once to the nearest float."""
        return self.n / (1 << self.k)

    def dump(self) -> list[int]:
        """``[n, k]``, JSON-ready (reduced: no factor of two left in ``n`` while ``k`` > 0)."""
        n, k = self.n, self.k
        if n == 0:
            return [0, 0]
        while k and not n & 1:
            n >>= 1
            k -= 1
        return [n, k]

    @classmethod
    def load(cls, pair) -> ExactSum:
        return cls(int(pair[0]), int(pair[1]))

    @classmethod
    def of(cls, values) -> ExactSum:
        total = cls()
        for value in values:
            total.add_float(value)
        return total

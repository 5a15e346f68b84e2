"""Forward exponential decay (Cormode et al., ICDE 2009) in event time.

An event of weight w at time t is stored as w * exp(lambda * (t - L)) against a
landmark L. The decayed value of a sum at time T is stored * exp(-lambda * (T - L)),
so adding an event never touches other members, and ordering members by stored
value is ordering them by decayed value. Stored values grow like exp(lambda * (t - L));
before the exponent passes `rebase_exponent` the landmark moves forward and every
stored value of the community is multiplied by exp(-lambda * delta_L) (a rebase).
The scorer's hot loop inlines these formulas; this class is their one definition.
"""

from __future__ import annotations

import math


class ForwardDecay:
    __slots__ = ("landmark", "rate", "rebase_exponent")

    def __init__(self, rate: float, landmark: float, rebase_exponent: float = 500.0) -> None:
        self.rate = rate
        self.landmark = landmark
        self.rebase_exponent = rebase_exponent

    def weight(self, ts: float) -> float:
        """g(ts - L): what one unit of weight at time `ts` adds to a stored value."""
        return math.exp(self.rate * (ts - self.landmark))

    def factor(self, clock: float) -> float:
        """What a stored value is multiplied by to read it decayed at `clock`."""
        return math.exp(-self.rate * (clock - self.landmark))

    def needs_rebase(self, ts: float) -> bool:
        return self.rate * (ts - self.landmark) > self.rebase_exponent

    def rebase(self, new_landmark: float) -> float:
        """Move the landmark; returns the multiplier every stored value must be scaled by."""
        multiplier = math.exp(-self.rate * (new_landmark - self.landmark))
        self.landmark = new_landmark
        return multiplier

"""Typed arrays as base64 text, so snapshots stay JSON while keeping every float bit-exact."""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any


def array_to_b64(values: array[Any]) -> str:
    """Little-endian bytes of `values`, base64-encoded."""
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode("ascii")


def array_from_b64(typecode: str, text: str) -> array[Any]:
    values = array(typecode)
    values.frombytes(base64.b64decode(text))
    if sys.byteorder == "big":
        values.byteswap()
    return values

"""The C helpers of the compiled hot path (streams/native.py `C_HELPERS`), for their tests."""

from __future__ import annotations

from types import ModuleType

from streams import native


def c_helper(module: str, python_twin_in_use: bool) -> ModuleType | None:
    """The built helper `module`, or None where the hot path runs as Python: then its module
    must be using its Python twin (`python_twin_in_use`), and the tests that hold the two to
    each other have nothing to compare."""
    helper = native.c_helper(module)
    if helper is None:
        assert native.mode != "compiled"  # built and current: it must load
        assert python_twin_in_use
    return helper

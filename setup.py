"""Compiles the hot path with mypyc when asked: ENGAGE_NATIVE=1 python setup.py build_ext --inplace.

`make native` does that (streams/native.py lists the modules and explains the guard that
keeps a stale build from running). Without ENGAGE_NATIVE, setup() builds plain Python:
`pip install` needs no C compiler, and everything runs the same, only slower.
"""

import json
import os
import runpy
from pathlib import Path

from setuptools import Extension, setup

ext_modules = []
if os.environ.get("ENGAGE_NATIVE") == "1":
    from mypyc.build import mypycify  # mypy's compiler: needs mypy and a C compiler

    native = runpy.run_path(str(Path(__file__).parent / "streams" / "native.py"))  # not `import streams`
    paths = [str(Path(*m.split(".")).with_suffix(".py")) for m in native["MODULES"]]
    # No extension of an earlier build stays behind to pass for this one: not of a module this
    # build fails on, nor of one dropped from the list (which the guard would not know about).
    Path("streams", native["BUILD_RECORD"]).unlink(missing_ok=True)
    for old in Path("streams").rglob("*.so"):
        old.unlink()
    # What is compiled and what it imports, hashed before compiling, so the guard can tell this
    # build from its sources' later edits.
    record = native["source_hashes"](native["build_sources"]())
    ext_modules = mypycify(paths, opt_level="3", group_name=native["GROUP"])
    ext_modules += [Extension(m, [c], extra_compile_args=["-O3"]) for m, c in native["C_HELPERS"].items()]
    Path("streams", native["BUILD_RECORD"]).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")

setup(ext_modules=ext_modules)

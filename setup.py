"""Compiles the hot path with mypyc when asked: ENGAGE_NATIVE=1 python setup.py build_ext --inplace.

`make native` does that (streams/native.py lists the modules and explains the guard that
keeps a stale build from running). Without ENGAGE_NATIVE, setup() builds plain Python:
`pip install` needs no C compiler, and everything runs the same, only slower.
"""

import hashlib
import json
import os
import runpy
from pathlib import Path

from setuptools import setup

ext_modules = []
if os.environ.get("ENGAGE_NATIVE") == "1":
    from mypyc.build import mypycify  # mypy's compiler: needs mypy and a C compiler

    native = runpy.run_path(str(Path(__file__).parent / "streams" / "native.py"))  # not `import streams`
    paths = [str(Path(*m.split(".")).with_suffix(".py")) for m in native["MODULES"]]
    for p in paths:  # a failed build leaves no old extension behind to pass for the new one
        for old in Path(p).parent.glob(Path(p).stem + ".*.so"):
            old.unlink()
    ext_modules = mypycify(paths, opt_level="3", group_name=native["GROUP"])
    # What was compiled, so the guard can tell a build from its sources' later edits.
    record = {m: hashlib.sha256(Path(p).read_bytes()).hexdigest() for m, p in zip(native["MODULES"], paths)}
    Path("streams", native["BUILD_RECORD"]).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")

setup(ext_modules=ext_modules)

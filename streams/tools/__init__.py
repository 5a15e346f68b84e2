"""Tools around the pipeline, not part of it: the simulator, the benchmark and its probes, the
local stack, the demo feed, fault drills, spam evaluation and the `engage` command bodies.

They may import the runtime; nothing outside this package imports them except `streams/cli.py`
(the runtime, the pure cores and `schemas/` never do: tests/unit/test_import_graph.py checks it).
"""

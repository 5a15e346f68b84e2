"""The notebook example of docs/analytics.md ("Connecting a BI tool or a notebook") runs as a
script, with clickhouse-connect's query_df and pandas, on a store holding the simulated communities."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "analytics.md"


def notebook_example() -> str:
    (block,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    return block


def test_the_example_uses_query_df() -> None:
    code = notebook_example()
    assert "query_df(" in code and "ENGAGE_CLICKHOUSE_DSN" in code


def test_the_notebook_example_runs_as_a_script(tmp_path: Path) -> None:
    store = tmp_path / "store"
    # One process fills the store and exits; chDB lets the next process open it.
    filled = subprocess.run([sys.executable, "-m", "tests.fixtures.analytics.fill_store", str(store)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert filled.returncode == 0, filled.stderr[-3000:]
    script = tmp_path / "notebook.py"
    script.write_text(notebook_example())
    env = {**os.environ, "ENGAGE_CLICKHOUSE_DSN": f"chdb://{store}"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    # The WAU pivot has a column per community, the monthly table the rounded stickiness,
    # and the retention pivot a row per community with a column per join source.
    assert "ana-big" in out.splitlines()[0], out[:500]
    assert "stickiness_pct" in out
    retention = out.splitlines()[-12:]
    assert any(line.startswith("ana-ret") and "0.8" in line and "0.2" in line for line in retention), out[-1500:]

"""Run ``fraud`` in a fresh interpreter and see which heavy libraries it imported.

Start-up time is part of what the lean commands promise (seconds of imports for pandas,
scikit-learn, SciPy, the xgboost package and Dagster), and only a new process shows it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY_LIBRARIES = ("pandas", "sklearn", "scipy", "xgboost", "dagster", "dask", "distributed")
# The cluster path's libraries: loaded only when FRAUD_DASK_SCHEDULER names a scheduler.
CLUSTER_LIBRARIES = ("dask", "distributed")


def loaded_after(statements: str, env: dict[str, str] | None = None) -> list[str]:
    """The heavy libraries a fresh interpreter holds after running ``statements``."""
    probe = f"import json, sys\n{statements}\nprint('LOADED', json.dumps([m for m in {HEAVY_LIBRARIES!r} if m in sys.modules]))\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.rpartition("LOADED ")[2])


def without_cluster() -> dict[str, str]:
    """This environment with no scheduler named: the single-process path."""
    return {name: value for name, value in os.environ.items() if name != "FRAUD_DASK_SCHEDULER"}


def run_fraud(argv: list[str], env: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """``fraud ARGV``'s standard output, and the heavy libraries loaded once it finished."""
    probe = (
        "import json, sys\n"
        "from fraud_assets.cli.main import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as done:\n"
        "    if done.code:\n"
        "        raise\n"
        "finally:\n"
        f"    print('LOADED', json.dumps([m for m in {HEAVY_LIBRARIES!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    output, _, loaded = done.stdout.rpartition("LOADED ")
    return output, json.loads(loaded)

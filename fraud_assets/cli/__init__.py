"""The ``fraud`` command: the same core code as the Dagster assets, for people and scripts."""

import os

# OpenMP threads (XGBoost's, scikit-learn's) spin at every barrier by default. On a small host
# shared with other work, a partner thread that has lost its core turns each of the thousands
# of barriers in a training run into a wasted time slice: training at the ULB size took 42 s
# instead of 14 s beside one busy process (9.8 s instead of 7.8 s on an idle machine).
# OpenMP reads this once, when it loads, so it must be set before anything imports it; a
# value the user set wins. Results do not depend on it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from fraud_assets.cli.main import main  # noqa: E402

__all__ = ["main"]

"""The model: training, threshold policy, evaluation, the quality gate, the bundle and its registry, batch scoring, contributions and the XGBoost runtime. Imports ``data`` and ``storage``."""

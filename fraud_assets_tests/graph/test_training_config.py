"""The fraud_model run config refuses threshold-policy fields its strategy would ignore, as
`fraud train` refuses the options; settings left unset in it come from the environment."""

import pytest

from fraud_assets.core.model.training import TrainingConfig
from fraud_assets.defs.assets.training import ModelTrainingConfig


@pytest.mark.parametrize("fields", [
    {"threshold_strategy": "max_f1", "missed_fraud_cost": 500.0},
    {"threshold_strategy": "alert_budget", "false_alert_cost": 3.0},
    {"threshold_strategy": "min_cost", "alerts_per_day": 10.0},
])
def test_a_field_the_strategy_ignores_is_refused(fields):
    with pytest.raises(ValueError, match="does not read it"):
        ModelTrainingConfig(**fields).to_core()


@pytest.mark.parametrize("fields", [
    {},
    {"threshold_strategy": "min_cost", "missed_fraud_cost": 500.0, "false_alert_cost": 2.0},
    {"threshold_strategy": "alert_budget", "alerts_per_day": 10.0},
])
def test_the_fields_a_strategy_reads_are_taken(fields):
    policy = ModelTrainingConfig(**fields).to_core().threshold
    for name, value in fields.items():
        assert getattr(policy, name.removeprefix("threshold_")) == value


def test_parallel_trees_come_from_the_config_then_the_setting_then_the_default(monkeypatch):
    monkeypatch.delenv("FRAUD_PARALLEL_TREES", raising=False)
    assert ModelTrainingConfig().to_core().parallel_trees == TrainingConfig.parallel_trees
    monkeypatch.setenv("FRAUD_PARALLEL_TREES", "2")
    assert ModelTrainingConfig().to_core().parallel_trees == 2
    assert ModelTrainingConfig(parallel_trees=1).to_core().parallel_trees == 1
    monkeypatch.setenv("FRAUD_PARALLEL_TREES", "many")
    with pytest.raises(ValueError, match="FRAUD_PARALLEL_TREES must be a whole number"):
        ModelTrainingConfig().to_core()

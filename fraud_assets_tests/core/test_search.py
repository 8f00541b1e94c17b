"""The hyperparameter search: seeded and reproducible, bounded by its budget, never worse on
validation than the defaults it starts from, and recorded in the manifest."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from fraud_assets.core.data.features import fit_preprocessor
from fraud_assets.core.model.training import train_fraud_model

# Small trees and few rounds: each trial takes a fraction of a second on the 30k-row sample.
TRIALS = 5


@pytest.fixture(scope="module")
def preprocessor(time_splits):
    return fit_preprocessor(time_splits.train)


@pytest.fixture(scope="module")
def search_config(fast_config):
    # A budget that never binds here, so the trial count ends the search.
    return dataclasses.replace(fast_config, search_budget_seconds=600.0, search_trials=TRIALS)


@pytest.fixture(scope="module")
def searched(time_splits, preprocessor, search_config):
    return train_fraud_model(time_splits, preprocessor, search_config)


def test_the_search_records_its_trials_and_trains_the_chosen_configuration(searched, fast_config):
    search = searched.manifest["search"]
    assert [trial["number"] for trial in search["trials"]] == list(range(TRIALS))
    assert all(trial["state"] == "COMPLETE" for trial in search["trials"])
    # The first trial is the configuration given, so the search starts from the defaults.
    first = search["trials"][0]["params"]
    assert first["learning_rate"] == fast_config.learning_rate and first["max_depth"] == fast_config.max_depth
    assert first["positive_weighting"] == fast_config.positive_weighting
    best = search["trials"][search["best_trial"]]
    assert best["value"] == min(trial["value"] for trial in search["trials"])
    # The best trial replaces the defaults only when its gain is beyond noise.
    beyond_noise = search["evidence_over_defaults"]["z"] > search["evidence_z_required"]
    assert search["chosen_trial"] == (search["best_trial"] if beyond_noise else 0)
    chosen = search["trials"][search["chosen_trial"]]
    assert search["chosen"] == chosen["params"]
    training = searched.manifest["training"]
    assert training["learning_rate"] == pytest.approx(chosen["params"]["learning_rate"])
    assert training["max_depth"] == chosen["params"]["max_depth"]
    assert training["eval_metric"] == chosen["params"]["eval_metric"]
    assert training["best_iteration"] == chosen["best_iteration"]


def test_the_same_seed_gives_the_same_trials_and_the_same_model(searched, time_splits, preprocessor, search_config):
    again = train_fraud_model(time_splits, preprocessor, search_config)
    strip = [{k: v for k, v in trial.items() if k != "seconds"} for trial in searched.manifest["search"]["trials"]]
    assert strip == [{k: v for k, v in trial.items() if k != "seconds"} for trial in again.manifest["search"]["trials"]]
    assert again.booster_bytes == searched.booster_bytes


def test_another_seed_searches_other_configurations(searched, time_splits, preprocessor, search_config):
    other = train_fraud_model(time_splits, preprocessor, dataclasses.replace(search_config, seed=1))
    params = lambda model: [t["params"] for t in model.manifest["search"]["trials"][1:]]  # noqa: E731
    assert params(other) != params(searched)


def test_the_budget_ends_the_search(time_splits, preprocessor, fast_config):
    # Trials of 300 rounds each against a budget shorter than one: the defaults still train
    # in full, and later trials are cut at the budget and not judged.
    config = dataclasses.replace(fast_config, n_estimators=300, early_stopping_rounds=300, eval_metric="logloss",
                                 search_budget_seconds=0.2, search_trials=50)
    model = train_fraud_model(time_splits, preprocessor, config)
    trials = model.manifest["search"]["trials"]
    assert trials[0]["state"] == "COMPLETE" and trials[0]["best_iteration"] > 0
    assert len(trials) < 50
    assert all(trial["state"] == "PRUNED" and trial["value"] is None for trial in trials[1:])
    assert model.manifest["search"]["chosen_trial"] == 0
    # Past the budget, the search only finishes the round it is in (generous slack for CI).
    assert model.manifest["search"]["seconds"] < trials[0]["seconds"] + 10


def test_a_trial_whose_first_round_meets_the_deadline_is_pruned_not_fatal(
        time_splits, preprocessor, fast_config, monkeypatch):
    # On a loaded machine the budget can run out inside a trial's first round. Every trial
    # after the defaults is given a deadline already past, so each is cut at round one.
    from fraud_assets.core.model import search

    deadline = search._Deadline
    monkeypatch.setattr(search, "_Deadline", lambda at: deadline(at if at == math.inf else -math.inf))
    config = dataclasses.replace(fast_config, search_budget_seconds=600.0, search_trials=3)
    model = train_fraud_model(time_splits, preprocessor, config)
    trials = model.manifest["search"]["trials"]
    assert [trial["state"] for trial in trials] == ["COMPLETE", "PRUNED", "PRUNED"]
    assert model.manifest["search"]["chosen_trial"] == 0


def test_a_weight_the_user_sets_is_not_searched(time_splits, preprocessor, search_config):
    model = train_fraud_model(time_splits, preprocessor,
                              dataclasses.replace(search_config, scale_pos_weight=3.0, search_trials=3))
    assert all("positive_weighting" not in trial["params"] for trial in model.manifest["search"]["trials"])
    assert model.manifest["training"]["scale_pos_weight"] == 3.0


def test_a_trial_replaces_the_defaults_only_on_evidence():
    from fraud_assets.core.model.search import paired_evidence

    rng = np.random.default_rng(0)
    defaults = rng.exponential(0.01, 20_000)
    assert paired_evidence(defaults, defaults) == {"mean_gain": 0.0, "z": 0.0}
    noise = paired_evidence(defaults, defaults + rng.normal(0, 0.001, defaults.size))
    assert abs(noise["z"]) < 4
    clear = paired_evidence(defaults, defaults * 0.9)
    assert clear["mean_gain"] == pytest.approx(0.1 * defaults.mean(), rel=1e-3) and clear["z"] > 10


def test_no_budget_trains_the_configuration_as_given(trained_model):
    assert "search" not in trained_model.manifest
    assert trained_model.manifest["training"]["search_budget_seconds"] == 0.0

"""The ``fraud`` command, run in-process through its real entry point ``main(argv)``."""

from __future__ import annotations

import functools
import json
import os
import shutil

import click
import fsspec
import numpy as np
import pandas as pd
import pytest

from fraud_assets.cli.main import cli, main
from fraud_assets.core.data.schema import FEATURE_COLUMNS, LABEL, PCA_COLUMNS
from fraud_assets.core.data.splits import split_transactions
from fraud_assets.core.data.tables import read_transactions
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.core.model.registry import ModelRegistry
from fraud_assets.core.model.training import TrainingConfig
from fraud_assets.core.storage.locations import Location
from fraud_assets_tests.import_probe import run_fraud
from fraud_assets_tests.ulb_files import replace_cell, write_ulb_csv

LOCAL = fsspec.filesystem("file")


def fraud(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``fraud ARGV`` as the console script does: (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def fast_training(monkeypatch):
    """The CLI's training, with fewer rounds: same code path, a few seconds per model."""
    # `fraud train` imports its training code when it runs, so the patch goes to the source.
    monkeypatch.setattr("fraud_assets.core.model.training.TrainingConfig",
                        functools.partial(TrainingConfig, n_estimators=60, early_stopping_rounds=20))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def train_csv(workdir, labelled_frame):
    return write_ulb_csv(labelled_frame.head(20_000), workdir / "train.csv")


@pytest.fixture(scope="module")
def batch_csv(workdir, batch_frame):
    return write_ulb_csv(batch_frame, workdir / "batch.csv")


@pytest.fixture(scope="module")
def fixed_model_dir(workdir, train_csv):
    directory = workdir / "model-fixed"
    code, out, err = _Capture().run("train", "--data", train_csv, "--output-dir", directory)
    assert code == 0, err
    return directory


@pytest.fixture(scope="module")
def tuned_model_dir(workdir, train_csv):
    directory = workdir / "model-tuned"
    code, out, err = _Capture().run("train", "--data", train_csv, "--output-dir", directory,
                                    "--optimize-threshold")
    assert code == 0, err
    return directory


class _Capture:
    """capsys is function-scoped; module fixtures capture through click's own runner."""

    def run(self, *argv):
        from click.testing import CliRunner

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("fraud_assets.core.model.training.TrainingConfig",
                          functools.partial(TrainingConfig, n_estimators=60, early_stopping_rounds=20))
            result = CliRunner().invoke(cli, [str(a) for a in argv], catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr


# --- help ------------------------------------------------------------------------------------------


def _command_paths(group: click.Group, prefix=()):
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        path = (*prefix, name)
        yield path, command
        if isinstance(command, click.Group):
            yield from _command_paths(command, path)


@pytest.mark.parametrize(
    ("path", "command"),
    [pytest.param(path, command, id=" ".join(path)) for path, command in _command_paths(cli)],
)
def test_help_works_for_every_command(capsys, path, command):
    code, out, err = fraud(capsys, *path, "--help")
    assert code == 0, err
    assert out.startswith(f"Usage: fraud {' '.join(path)}")
    for parameter in command.params:
        if isinstance(parameter, click.Option) and not parameter.hidden:
            assert parameter.opts[-1] in out, f"{parameter.opts} missing from help of {path}"


def test_top_level_help_lists_every_command(capsys):
    code, out, _ = fraud(capsys, "--help")
    assert code == 0
    for name in ("generate", "train", "score", "drift", "demo", "model"):
        assert f"  {name}" in out


def test_top_level_help_imports_no_heavy_library():
    """Listing the commands must not pay for what one command needs (seconds of imports)."""
    output, loaded = run_fraud(["--help"])
    assert "Commands:" in output and "  train" in output
    assert loaded == []


# --- generate --------------------------------------------------------------------------------------


def test_generate_csv_and_parquet_hold_the_same_rows(capsys, tmp_path):
    code, out, _ = fraud(capsys, "generate", "--n-samples", 3000, "--seed", 4,
                         "--output", tmp_path / "d.csv")
    assert code == 0 and out.startswith("wrote 3000 rows")
    code, _, _ = fraud(capsys, "generate", "--n-samples", 3000, "--seed", 4,
                       "--output", tmp_path / "d.parquet")
    assert code == 0
    csv = read_transactions(str(tmp_path / "d.csv"))
    parquet = read_transactions(str(tmp_path / "d.parquet"))
    assert len(csv) == 3000 and list(csv.columns) == list(parquet.columns)
    np.testing.assert_array_equal(csv.to_numpy(np.float64), parquet.to_numpy(np.float64))
    assert f"({int(csv[LABEL].sum())} frauds)" in out


def test_generate_without_labels(capsys, tmp_path):
    code, out, _ = fraud(capsys, "generate", "--n-samples", 500, "--no-labels",
                         "--output", tmp_path / "batch.parquet")
    assert code == 0 and "frauds" not in out
    frame = read_transactions(str(tmp_path / "batch.parquet"), require_label=False)
    assert list(frame.columns) == list(FEATURE_COLUMNS)


def test_generate_seed_is_reproducible(capsys, tmp_path):
    for name, seed in (("a.csv", 1), ("b.csv", 1), ("c.csv", 2)):
        assert fraud(capsys, "generate", "--n-samples", 800, "--seed", seed,
                     "--output", tmp_path / name)[0] == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "c.csv").read_bytes()


def test_generate_refuses_unknown_format(capsys, tmp_path):
    code, _, err = fraud(capsys, "generate", "--n-samples", 10, "--output", tmp_path / "d.xlsx")
    assert code == 2 and "unsupported file type" in err
    assert os.listdir(tmp_path) == []


# --- train -----------------------------------------------------------------------------------------

BUNDLE = {"model.ubj", "preprocessing.json", "manifest.json", "pr_curve.svg", "metrics.json", "threshold.json", "reliability.svg"}


def test_train_writes_the_bundle_metrics_and_a_fixed_threshold(fixed_model_dir):
    assert set(os.listdir(fixed_model_dir)) == BUNDLE
    threshold = json.loads((fixed_model_dir / "threshold.json").read_text())
    assert threshold == {"threshold": 0.5, "policy": {"strategy": "fixed", "threshold": 0.5}}
    metrics = json.loads((fixed_model_dir / "metrics.json").read_text())
    # Validation and test figures are re-evaluated at the fixed threshold.
    assert metrics["test"]["threshold"] == metrics["validation"]["threshold"] == 0.5
    assert metrics["test"]["auprc"] > 0.3
    model = FraudModel.load(LOCAL, str(fixed_model_dir))
    assert model.threshold == 0.5 and model.metrics == metrics


def test_optimize_threshold_moves_it_from_one_half(tuned_model_dir, fixed_model_dir):
    threshold = json.loads((tuned_model_dir / "threshold.json").read_text())
    assert threshold["threshold"] != 0.5 and 0 < threshold["threshold"] < 1
    assert threshold["policy"]["strategy"] == "max_f1"
    tuned = json.loads((tuned_model_dir / "metrics.json").read_text())
    fixed = json.loads((fixed_model_dir / "metrics.json").read_text())
    assert tuned["validation"]["f1"] >= fixed["validation"]["f1"]  # max F1 on validation
    assert FraudModel.load(LOCAL, str(tuned_model_dir)).threshold == threshold["threshold"]


@pytest.mark.parametrize("option", [("--threshold-strategy", "min_cost"), ("--alerts-per-day", "20")])
def test_threshold_options_without_tuning_are_refused_not_ignored(capsys, train_csv, tmp_path, option):
    code, _, err = fraud(capsys, "train", "--data", train_csv, "--output-dir", tmp_path / "m", *option)
    assert code == 2 and f"{option[0]} only apply with --optimize-threshold" in err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(("strategy", "option", "reader"), [
    ("max_f1", ("--missed-fraud-cost", "500"), "min_cost"),
    ("alert_budget", ("--false-alert-cost", "2"), "min_cost"),
    ("min_cost", ("--alerts-per-day", "20"), "alert_budget"),
])
def test_policy_options_the_strategy_ignores_are_refused(capsys, train_csv, tmp_path, strategy, option, reader):
    code, _, err = fraud(capsys, "train", "--data", train_csv, "--output-dir", tmp_path / "m",
                         "--optimize-threshold", "--threshold-strategy", strategy, *option)
    assert code == 2 and f"{option[0]} only applies to --threshold-strategy {reader}, not {strategy}" in err
    assert not (tmp_path / "m").exists()


def test_train_alert_budget_policy(capsys, train_csv, tmp_path):
    code, out, err = fraud(capsys, "train", "--data", train_csv, "--output-dir", tmp_path / "m",
                           "--optimize-threshold", "--threshold-strategy", "alert_budget",
                           "--alerts-per-day", 100)
    assert code == 0, err
    threshold = json.loads((tmp_path / "m" / "threshold.json").read_text())
    assert threshold["policy"]["strategy"] == "alert_budget"
    assert threshold["policy"]["alerts_per_day"] == 100
    validation = json.loads((tmp_path / "m" / "metrics.json").read_text())["validation"]
    flagged = validation["confusion_matrix"]["tp"] + validation["confusion_matrix"]["fp"]
    split = split_transactions(read_transactions(str(train_csv))).validation
    days = (split["Time"].max() - split["Time"].min()) / 86_400
    assert 0 < flagged <= 100 * days
    assert f"threshold {threshold['threshold']:.4f}" in out


def test_train_searches_within_the_budget_given_and_says_what_it_chose(capsys, train_csv, tmp_path):
    code, out, err = fraud(capsys, "train", "--data", train_csv, "--output-dir", tmp_path / "m",
                           "--search-budget", 600, "--search-trials", 2, "--seed", 4)
    assert code == 0, err
    search = json.loads((tmp_path / "m" / "manifest.json").read_text())["search"]
    assert (search["budget_seconds"], search["max_trials"], search["seed"]) == (600, 2, 4)
    assert len(search["trials"]) == 2
    assert f"search: trial {search['chosen_trial']} of 2 chosen" in out


def test_no_refit_ships_the_model_early_stopping_cut(capsys, train_csv, tmp_path, monkeypatch):
    models = {}
    monkeypatch.setenv("FRAUD_REFIT", "off")
    for flag in ("--refit", "--no-refit", None):
        folder = tmp_path / str(flag)
        code, _, err = fraud(capsys, "train", "--data", train_csv, "--output-dir", folder, *([flag] if flag else []))
        assert code == 0, err
        models[flag] = json.loads((folder / "manifest.json").read_text())
    assert models[None]["training"]["refit"] is None  # FRAUD_REFIT=off, no flag
    assert models["--no-refit"]["training"]["refit"] is None
    assert models["--no-refit"]["training"]["refit_on_validation"] is False
    refit = models["--refit"]["training"]["refit"]
    data = models["--refit"]["data"]
    assert refit["rows"] == data["train"]["rows"] + data["validation"]["rows"]
    # The same early stopping on both; only what ships differs.
    assert refit["rounds"] == models["--no-refit"]["training"]["best_iteration"] + 1
    assert models["--refit"]["metrics"]["validation"] == models["--no-refit"]["metrics"]["validation"]
    assert models["--refit"]["metrics"]["test"] != models["--no-refit"]["metrics"]["test"]


def test_parallel_trees_grow_that_many_trees_a_round(capsys, train_csv, tmp_path, monkeypatch):
    assert f"else {TrainingConfig.parallel_trees}]" in train_command_help("parallel_trees")
    monkeypatch.setenv("FRAUD_PARALLEL_TREES", "2")
    for flag, trees in ((None, 2), (1, 1)):  # the setting, then the flag over it
        folder = tmp_path / str(trees)
        width = () if flag is None else ("--parallel-trees", flag)
        code, _, err = fraud(capsys, "train", "--data", train_csv, "--output-dir", folder, *width,
                             "--search-budget", 0)
        assert code == 0, err
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["training"]["parallel_trees"] == trees
        booster = json.loads(FraudModel.load(LOCAL, str(folder)).booster.save_raw("json"))
        assert len(booster["learner"]["gradient_booster"]["model"]["trees"]) == trees * (manifest["training"]["best_iteration"] + 1)


def test_a_parallel_trees_setting_below_one_is_refused(capsys, train_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUD_PARALLEL_TREES", "0")
    code, _, err = fraud(capsys, "train", "--data", train_csv, "--output-dir", tmp_path / "m", "--search-budget", 0)
    assert code == 2 and "FRAUD_PARALLEL_TREES" in err
    assert not (tmp_path / "m").exists()


def train_command_help(name: str) -> str:
    from fraud_assets.cli.train import train_command

    return next(option.help for option in train_command.params if option.name == name)


def test_a_refit_setting_that_is_neither_on_nor_off_is_refused(capsys, train_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUD_REFIT", "yes")
    code, _, err = fraud(capsys, "train", "--data", train_csv, "--output-dir", tmp_path / "m")
    assert code != 0 and "FRAUD_REFIT must be 'on' or 'off'" in err


def test_the_search_budget_comes_from_the_environment(capsys, train_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUD_SEARCH_BUDGET_SECONDS", "-1")
    code, out, err = fraud(capsys, "train", "--data", train_csv, "--output-dir", tmp_path / "m")
    assert code != 0 and "FRAUD_SEARCH_BUDGET_SECONDS must be 0 or more" in err


# --- score -----------------------------------------------------------------------------------------


def test_score_writes_predictions_and_inference_stats(capsys, fixed_model_dir, batch_csv, tmp_path,
                                                      batch_frame):
    output = tmp_path / "out" / "predictions.csv"
    code, out, err = fraud(capsys, "score", "--model-dir", fixed_model_dir, "--input", batch_csv,
                           "--output", output)
    assert code == 0, err
    predictions = pd.read_csv(output)
    assert list(predictions.columns) == ["transaction_id", "fraud_probability", "is_fraud",
                                         "model_version"]
    assert len(predictions) == len(batch_frame)
    stats = json.loads((tmp_path / "out" / "inference_stats.json").read_text())
    assert stats["rows"] == len(batch_frame)
    assert stats["flagged"] == int(predictions["is_fraud"].sum())
    assert stats["flagged_rate"] == pytest.approx(stats["flagged"] / stats["rows"], abs=1e-6)
    assert stats["seconds"] >= 0 and stats["threshold"] == 0.5
    assert json.loads(out) == {k: v for k, v in stats.items() if k not in ("input", "output")}
    model = FraudModel.load(LOCAL, str(fixed_model_dir))
    expected = model.predict_proba(batch_frame.loc[:, list(FEATURE_COLUMNS)].to_numpy(np.float32))
    np.testing.assert_allclose(predictions["fraud_probability"], expected, rtol=1e-6)


def test_score_with_the_guides_preprocessing_flag(capsys, fixed_model_dir, batch_csv, tmp_path):
    plain, explicit = tmp_path / "plain.parquet", tmp_path / "explicit.parquet"
    assert fraud(capsys, "score", "--model-dir", fixed_model_dir, "--input", batch_csv,
                 "--output", plain)[0] == 0
    code, _, err = fraud(capsys, "score", "--model-dir", fixed_model_dir, "--input", batch_csv,
                         "--output", explicit,
                         "--preprocessing", fixed_model_dir / "preprocessing.json")
    assert code == 0, err
    pd.testing.assert_frame_equal(pd.read_parquet(plain), pd.read_parquet(explicit))


def test_score_preprocessing_flag_is_really_used(capsys, fixed_model_dir, batch_csv, tmp_path):
    document = json.loads((fixed_model_dir / "preprocessing.json").read_text())
    document["center"] = [c + 1.0 for c in document["center"]]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(document))
    for name, extra in (("a.csv", ()), ("b.csv", ("--preprocessing", other))):
        assert fraud(capsys, "score", "--model-dir", fixed_model_dir, "--input", batch_csv,
                     "--output", tmp_path / name, *extra)[0] == 0
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert not np.allclose(a["fraud_probability"], b["fraud_probability"])


@pytest.mark.parametrize(
    ("name", "content", "wording"),
    [
        ("preprocessing.pkl", b"\x80\x04K\x01.", "no pickles"),
        ("broken.json", b"{not json", "broken.json"),
        ("kind.json", json.dumps({"kind": "pickle"}).encode(), "unknown preprocessing kind"),
    ],
)
def test_score_refuses_non_json_preprocessing(capsys, fixed_model_dir, batch_csv, tmp_path,
                                              name, content, wording):
    (tmp_path / name).write_bytes(content)
    code, _, err = fraud(capsys, "score", "--model-dir", fixed_model_dir, "--input", batch_csv,
                         "--output", tmp_path / "out" / "p.csv", "--preprocessing", tmp_path / name)
    assert code == 2
    assert "--preprocessing" in err and wording in err
    assert not (tmp_path / "out").exists()


def test_score_from_a_registry_root_uses_production(capsys, trained_model, batch_csv, tmp_path):
    registry = ModelRegistry(Location(str(tmp_path / "models")))
    registry.save(trained_model)
    code, _, err = fraud(capsys, "score", "--model-dir", tmp_path / "models", "--input", batch_csv,
                         "--output", tmp_path / "p.csv")
    assert code == 2 and "holds no model" in err  # nothing promoted yet
    registry.promote(trained_model.version, reason="test")
    assert fraud(capsys, "score", "--model-dir", tmp_path / "models", "--input", batch_csv,
                 "--output", tmp_path / "p.csv")[0] == 0
    assert set(pd.read_csv(tmp_path / "p.csv")["model_version"]) == {trained_model.version}


# --- drift -----------------------------------------------------------------------------------------


def test_drift_prints_json_report(capsys, train_csv, batch_csv):
    code, out, err = fraud(capsys, "drift", "--reference", train_csv, "--current", batch_csv)
    assert code == 0, err
    report = json.loads(out)
    assert report["drift_detected"] is False
    assert set(report["features"]) == {*PCA_COLUMNS, "Amount"}
    assert report["rows"] == 5_000


def test_drift_writes_output_and_detects_a_shift(capsys, train_csv, batch_frame, fixed_model_dir,
                                                 tmp_path):
    shifted = batch_frame.copy()
    shifted[list(PCA_COLUMNS)] *= 2.0
    shifted["Amount"] *= 3.0
    current = write_ulb_csv(shifted, tmp_path / "shifted.csv")
    code, out, err = fraud(capsys, "drift", "--reference", train_csv, "--current", current,
                           "--model-dir", fixed_model_dir, "--output", tmp_path / "drift.json")
    assert code == 0, err
    report = json.loads((tmp_path / "drift.json").read_text())
    assert report["drift_detected"] is True and report["drift_level"] == "major"
    assert "score" in report["features"]  # model scores are compared too
    assert out.strip() == f"drift_detected=true level=major report={tmp_path / 'drift.json'}"


# --- bad input: exit code 2, a message naming file, column and rows, no output ---------------------

BAD_INPUTS = [
    ("missing-column", None, "missing column(s): V4"),
    ("non-numeric", "twelve", "column 'V4': 2 row(s) not numeric (first at data row 3)"),
    ("nan", "NaN", "column 'V4': 2 row(s) empty or NaN (first at data row 3)"),
    ("empty-cell", "", "column 'V4': 2 row(s) empty or NaN (first at data row 3)"),
    ("inf", "inf", "column 'V4': 2 row(s) infinite (first at data row 3)"),
    ("negative-amount", "-1", "column 'Amount': 2 row(s) negative (first at data row 3)"),
    ("empty-file", "", "empty file"),
    ("header-only", "", "no data rows"),
]


def _bad_file(directory, batch_frame, case: str, value) -> str:
    path = directory / f"{case}.csv"
    frame = batch_frame.head(50)
    if case == "missing-column":
        write_ulb_csv(frame.drop(columns="V4"), path)
    elif case == "empty-file":
        path.write_text("")
    elif case == "header-only":
        write_ulb_csv(frame.head(0), path)
    else:
        write_ulb_csv(frame, path)
        column = "Amount" if case == "negative-amount" else "V4"
        replace_cell(path, [3, 40], column, value)
    return path


@pytest.mark.parametrize(("case", "value", "wording"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_score_bad_input_exits_2_naming_file_column_rows(capsys, fixed_model_dir, batch_frame,
                                                         tmp_path, case, value, wording):
    source = _bad_file(tmp_path, batch_frame, case, value)
    output = tmp_path / "out" / "predictions.parquet"
    code, out, err = fraud(capsys, "score", "--model-dir", fixed_model_dir, "--input", source,
                           "--output", output)
    assert code == 2
    assert err.startswith(f"error: invalid input: {source}: ")
    assert wording in err
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("case", ["non-numeric", "negative-amount", "missing-column"])
def test_train_and_drift_bad_input_exit_2(capsys, train_csv, batch_frame, tmp_path, case):
    value, wording = {c[0]: (c[1], c[2]) for c in BAD_INPUTS}[case]
    source = _bad_file(tmp_path, batch_frame.assign(Class=0), case, value)
    code, _, err = fraud(capsys, "train", "--data", source, "--output-dir", tmp_path / "model")
    assert code == 2 and str(source) in err and wording in err
    assert not (tmp_path / "model").exists()
    code, _, err = fraud(capsys, "drift", "--reference", train_csv, "--current", source,
                         "--output", tmp_path / "drift.json")
    assert code == 2 and str(source) in err and wording in err
    assert not (tmp_path / "drift.json").exists()


@pytest.mark.parametrize(
    ("argv", "wording"),
    [
        (("train", "--data", "{tmp}/nope.csv", "--output-dir", "{tmp}/m"), "no such file"),
        (("train", "--data", "{tmp}/data.txt", "--output-dir", "{tmp}/m"), "unsupported file type"),
        (("drift", "--reference", "{tmp}/nope.parquet", "--current", "{tmp}/nope.csv"),
         "no such file"),
        (("score", "--model-dir", "{tmp}", "--input", "{tmp}/in.csv", "--output", "{tmp}/o.csv"),
         "holds no model"),
    ],
)
def test_missing_or_unsupported_files_are_usage_errors(capsys, tmp_path, argv, wording):
    (tmp_path / "data.txt").write_text("x")
    (tmp_path / "in.csv").write_text("x")
    code, _, err = fraud(capsys, *(a.format(tmp=tmp_path) for a in argv))
    assert code == 2 and wording in err
    assert "Traceback" not in err


# --- fraud model list / promote / backup / restore -------------------------------------------------

V1, V2 = "xgb-20250101T000000Z-aaaa1111", "xgb-20250201T000000Z-bbbb2222"


@pytest.fixture
def local_registry(tmp_path, monkeypatch, trained_model):
    monkeypatch.setenv("FRAUD_LOCAL_DIR", str(tmp_path))
    monkeypatch.setenv("FRAUD_ENV", "local")
    registry = ModelRegistry(Location(str(tmp_path / "models")))
    for version in (V1, V2):
        registry.save(FraudModel(version=version, booster_bytes=trained_model.booster_bytes,
                                 preprocessor=trained_model.preprocessor,
                                 threshold=trained_model.threshold,
                                 log_odds_correction=trained_model.log_odds_correction,
                                 manifest=trained_model.manifest))
    return registry


def _listing(capsys) -> list[dict]:
    code, out, err = fraud(capsys, "model", "list", "--json")
    assert code == 0, err
    return json.loads(out)


def test_model_list(capsys, local_registry):
    rows = _listing(capsys)
    assert [r["version"] for r in rows] == [V1, V2]
    assert not any(r["production"] for r in rows)
    code, out, _ = fraud(capsys, "model", "list")
    assert code == 0 and f"  {V1}  test_auprc=" in out and "*" not in out


def test_promote_unknown_version_fails_clearly(capsys, local_registry):
    code, out, err = fraud(capsys, "model", "promote", "xgb-doesnotexist")
    assert code == 1
    assert "no model version 'xgb-doesnotexist'" in err
    assert f"known: {V1}, {V2}" in err
    assert local_registry.production_version() is None


def test_promote_then_rollback_changes_production(capsys, local_registry):
    code, out, _ = fraud(capsys, "model", "promote", V1, "--reason", "first")
    assert code == 0 and out.strip() == f"production: none -> {V1}"
    assert fraud(capsys, "model", "promote", V2)[0] == 0
    assert local_registry.production_version() == V2
    code, out, _ = fraud(capsys, "model", "promote", V1, "--reason", "rollback")
    assert code == 0 and out.strip() == f"production: {V2} -> {V1}"
    assert local_registry.production_version() == V1
    assert [h["version"] for h in local_registry.production_record()["history"]] == [V1, V2]
    assert [r["production"] for r in _listing(capsys)] == [True, False]
    code, out, _ = fraud(capsys, "model", "list")
    assert f"* {V1}" in out and f"  {V2}" in out


def test_a_trained_folder_is_added_once_then_promoted_and_served_from_the_registry(
        capsys, tmp_path, monkeypatch, fixed_model_dir):
    monkeypatch.setenv("FRAUD_LOCAL_DIR", str(tmp_path))
    monkeypatch.setenv("FRAUD_ENV", "local")
    version = json.loads((fixed_model_dir / "manifest.json").read_text())["version"]
    code, out, err = fraud(capsys, "model", "add", fixed_model_dir)
    assert code == 0 and out.startswith(f"added {version}"), err
    code, out, _ = fraud(capsys, "model", "add", fixed_model_dir)
    assert code == 0 and "already in" in out and "nothing added" in out
    assert fraud(capsys, "model", "promote", version)[0] == 0
    registry = ModelRegistry(Location(str(tmp_path / "models")))
    assert registry.version_ids() == [version] and registry.production_version() == version
    served = registry.load_production()
    assert served.booster_bytes == FraudModel.load(LOCAL, str(fixed_model_dir)).booster_bytes
    code, _, err = fraud(capsys, "model", "add", tmp_path)
    assert code == 2 and "holds no model" in err
    damaged = tmp_path / "damaged"
    shutil.copytree(fixed_model_dir, damaged)
    (damaged / "model.ubj").write_bytes(bytes(range(256)) * 8)
    code, _, err = fraud(capsys, "model", "add", damaged)
    assert code == 2 and "Invalid model format" in err and "Stack trace" not in err, err
    # A manifest naming a path out of the registry, or a pointer, is refused.
    for bad in ("../../outside", "production.json"):
        forged = tmp_path / f"forged-{bad.strip('./')}"
        shutil.copytree(fixed_model_dir, forged)
        manifest = json.loads((forged / "manifest.json").read_text())
        (forged / "manifest.json").write_text(json.dumps({**manifest, "version": bad}))
        code, _, err = fraud(capsys, "model", "add", forged)
        assert code == 2 and "invalid model version" in err, err
    assert registry.version_ids() == [version] and not (tmp_path / "outside").exists()
    assert json.loads((tmp_path / "models" / "production.json").read_text())["version"] == version


def test_backup_and_restore(capsys, local_registry, tmp_path):
    assert fraud(capsys, "model", "promote", V2)[0] == 0
    code, out, _ = fraud(capsys, "model", "backup")
    assert code == 0 and out.startswith("backed up 2 new version(s)")
    assert ModelRegistry(Location(str(tmp_path / "backups"))).version_ids() == [V1, V2]
    code, out, _ = fraud(capsys, "model", "backup")
    assert out.startswith("backed up 0 new version(s)")

    shutil.rmtree(tmp_path / "models")
    code, out, _ = fraud(capsys, "model", "restore", "--version", V1)
    assert code == 0 and out.startswith("restored 1 version(s)")
    assert local_registry.version_ids() == [V1] and local_registry.production_version() is None
    code, out, _ = fraud(capsys, "model", "restore")
    assert code == 0 and out.startswith("restored 1 version(s)")  # V1 is skipped
    assert f"production: none -> {V2}" in out  # the pointer came back too: said, not silent
    assert local_registry.version_ids() == [V1, V2]
    assert local_registry.production_version() == V2

    code, _, err = fraud(capsys, "model", "restore", "--version", "xgb-gone")
    assert code == 1 and "no model version 'xgb-gone'" in err


def _break_pointer(model_dir, tmp_path):
    root = tmp_path / "registry"
    (root / "xgb-missing").mkdir(parents=True)
    (root / "production.json").write_text(json.dumps({"version": "xgb-20250101T000000Z-00000000"}))
    return root


def _break_booster(model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "model.ubj").write_bytes(b"not a booster")
    return broken


def _drop_booster(model_dir, tmp_path):
    broken = tmp_path / "incomplete"
    shutil.copytree(model_dir, broken)
    (broken / "model.ubj").unlink()
    return broken


@pytest.mark.parametrize("damage", [_break_pointer, _break_booster, _drop_booster])
def test_broken_model_folders_are_usage_errors_naming_the_folder(
    capsys, tmp_path, fixed_model_dir, train_csv, damage
):
    broken = damage(fixed_model_dir, tmp_path)
    code, _, err = fraud(capsys, "score", "--model-dir", broken, "--input", train_csv,
                         "--output", tmp_path / "out.csv")
    assert code == 2
    assert "--model-dir" in err and str(broken) in err
    assert "Traceback" not in err
    assert not (tmp_path / "out.csv").exists()


def test_drift_fail_on_exits_3_at_that_level(capsys, train_csv, batch_frame, tmp_path):
    shifted = batch_frame.copy()
    for name in ("V1", "V2", "V3", "V4", "V5"):
        shifted[name] += 0.5 * batch_frame[name].std()
    shifted["Amount"] *= 1.5
    current = write_ulb_csv(shifted, tmp_path / "shifted.csv")
    code, out, _ = fraud(capsys, "drift", "--reference", train_csv, "--current", current,
                         "--fail-on", "moderate", "--chart", tmp_path / "drift.svg")
    report = json.loads(out)
    assert report["drift_detected"] is True and code == 3
    assert (tmp_path / "drift.svg").read_text().startswith("<svg")
    quiet, _, _ = fraud(capsys, "drift", "--reference", train_csv, "--current", train_csv,
                        "--fail-on", "moderate")
    assert quiet == 0

"""``fraud performance`` reads the stored realized_performance documents of the environment."""

from __future__ import annotations

import json

import pytest

from fraud_assets.cli.main import main


def fraud(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(argv))
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def _figure(date, role, version, auprc, mature, frauds=12):
    return {"date": date, "role": role, "model_version": version, "threshold": 0.5, "rows": 1000,
            "frauds": frauds, "alerts": 15, "caught": 10, "missed": frauds - 10, "false_alerts": 5,
            "auprc": auprc, "precision": 10 / 15, "recall": 10 / frauds, "cost": 205.0,
            "mature": mature, "known_fraud_share": None if mature else 0.8}


@pytest.fixture
def environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUD_LOCAL_DIR", str(tmp_path))
    monkeypatch.setenv("FRAUD_ENV", "local")
    folder = tmp_path / "data" / "assets" / "realized_performance"
    folder.mkdir(parents=True)
    documents = {
        "2025-03-01": {"date": "2025-03-01", "mature": True,
                       "figures": [_figure("2025-03-01", "challenger", "v2", 0.81, True),
                                   _figure("2025-03-01", "production", "v1", 0.74, True)]},
        # A day nobody could measure yet: no fraud reported, AUPRC undefined (null).
        "2025-03-02": {"date": "2025-03-02", "mature": False,
                       "figures": [_figure("2025-03-02", "production", "v1", None, False, frauds=11)]},
    }
    for day, document in documents.items():
        (folder / f"{day}.json").write_text(json.dumps(document))
    return tmp_path


def test_table_shows_each_day_and_role(capsys, environment):
    code, out, _ = fraud(capsys, "performance")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["date", "role", "model_version"]
    body = [line.split() for line in lines[1:]]
    # Production first within a day, then the challenger; days in order.
    assert [(row[0], row[1], row[2]) for row in body] == [
        ("2025-03-01", "production", "v1"), ("2025-03-01", "challenger", "v2"),
        ("2025-03-02", "production", "v1")]
    assert body[0][5] == "0.7400" and body[0][-1] == "mature"
    assert body[2][5] == "-" and body[2][-1] == "provisional"


def test_json_filters_by_date(capsys, environment):
    code, out, _ = fraud(capsys, "performance", "--from", "2025-03-02", "--json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 1
    assert rows[0]["date"] == "2025-03-02" and rows[0]["role"] == "production"
    assert rows[0]["auprc"] is None and rows[0]["mature"] is False and rows[0]["frauds"] == 11
    code, out, _ = fraud(capsys, "performance", "--to", "2025-03-01", "--json")
    rows = json.loads(out)
    assert {(r["role"], r["auprc"]) for r in rows} == {("production", 0.74), ("challenger", 0.81)}
    for key in ("date", "role", "model_version", "rows", "frauds", "auprc", "precision", "recall",
                "alerts", "mature"):
        assert key in rows[0]


@pytest.mark.parametrize("argv", [("--from", "yesterday"), ("--to", "2025-13-01"),
                                  ("--from", "2025-03-02", "--to", "2025-03-01")])
def test_bad_dates_are_usage_errors(capsys, environment, argv):
    code, _, err = fraud(capsys, "performance", *argv)
    assert code == 2
    assert "Error" in err

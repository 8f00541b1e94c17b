"""POST /predict over HTTP against the real process: same scores as the batch path."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from fraud_assets.core.data.schema import FEATURE_COLUMNS


def test_batch_scores_equal_the_batch_path_exactly(client, models, transactions, tmp_path):
    from fraud_assets.core.model.scoring import score_file

    rows = [{"transaction_id": f"t{i:04d}", **row} for i, row in enumerate(transactions)]
    response = client.post("/predict", json=rows)
    assert response.status_code == 200, response.text
    answers = response.json()
    assert [a["transaction_id"] for a in answers] == [r["transaction_id"] for r in rows]

    source, output = tmp_path / "batch.csv", tmp_path / "scored.parquet"
    pd.DataFrame(rows).to_csv(source, index=False)
    stats = score_file(models[0], str(source), str(output))
    batch = pq.read_table(output).to_pandas()

    served = np.array([a["fraud_probability"] for a in answers], dtype=np.float32)
    expected = batch["fraud_probability"].to_numpy()
    assert expected.dtype == np.float32
    assert np.array_equal(served, expected)
    assert [a["is_fraud"] for a in answers] == batch["is_fraud"].tolist()
    assert sum(a["is_fraud"] for a in answers) == stats.flagged > 0
    assert {a["model_version"] for a in answers} == {models[0].version}


def test_single_transaction_gets_one_object_with_top_contributions(client, models, transactions):
    model = models[0]
    row = transactions[3]
    response = client.post("/predict", json={"id": 42, **row})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {
        "transaction_id", "fraud_probability", "is_fraud", "model_version", "top_contributions",
    }
    assert answer["transaction_id"] == 42
    raw = np.array([[row[c] for c in FEATURE_COLUMNS]], dtype=np.float32)
    assert np.float32(answer["fraud_probability"]) == model.predict_proba(raw)[0]
    assert answer["is_fraud"] == bool(model.predict_proba(raw)[0] >= model.threshold)

    contributions = model.contributions(raw)[0, :-1]
    names = list(model.preprocessor.feature_names)
    top = answer["top_contributions"]
    assert len(top) == 5
    assert [abs(t["contribution"]) for t in top] == sorted(
        (abs(t["contribution"]) for t in top), reverse=True
    )
    assert abs(top[0]["contribution"]) == np.abs(contributions).max()
    for entry in top:
        assert np.float32(entry["contribution"]) == contributions[names.index(entry["feature"])]


def test_list_of_one_gets_a_list_and_missing_ids_are_null(client, transactions):
    response = client.post("/predict", json=[transactions[0]])
    assert response.status_code == 200
    (answer,) = response.json()
    assert answer["transaction_id"] is None


def test_ids_come_back_as_sent(client, transactions):
    ids = ['quote " and \\ backslash', "café ✓", 2**40, "0007"]
    rows = [{"transaction_id": i, **transactions[k]} for k, i in enumerate(ids)]
    rows.append({"id": "from-id", **transactions[9]})
    response = client.post("/predict", json=rows)
    assert [a["transaction_id"] for a in response.json()] == [*ids, "from-id"]


def test_integer_values_are_numbers_too(client, transactions):
    row = {k: (int(v) if k in ("Time", "Amount") else v) for k, v in transactions[1].items()}
    row["Amount"] = 12
    assert client.post("/predict", json=row).status_code == 200


def test_an_id_holding_a_lone_surrogate_comes_back_as_sent(client, transactions):
    # Legal as a JSON escape, but not encodable as UTF-8: the fast encoder refuses it.
    body = json.dumps({"transaction_id": "\ud800", **transactions[0]}).encode()
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json()["transaction_id"] == "\ud800"


def test_integer_ids_beyond_64_bits_are_refused_naming_the_field(client, transactions):
    body = json.dumps({"transaction_id": 2**64, **transactions[0]}).encode()
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "transaction_id"] and "64-bit integer" in error["msg"]


def test_the_64_bit_id_rule_holds_whichever_parser_reads_the_body(client, transactions):
    # A lone surrogate sends the whole body to the standard library's parser, which keeps
    # integers of any size: the id rule must not depend on orjson turning them into floats.
    items = [{"transaction_id": "\ud800", **transactions[0]}, {"transaction_id": 2**64, **transactions[1]}]
    response = client.post("/predict", content=json.dumps(items).encode(), headers={"content-type": "application/json"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", 1, "transaction_id"] and "64-bit integer" in error["msg"]
    # The limits themselves: both ends of the signed and unsigned 64-bit ranges are ids.
    for edge in (-(2**63), 2**64 - 1):
        ok = client.post("/predict", content=json.dumps({"transaction_id": edge, **transactions[0]}).encode(),
                         headers={"content-type": "application/json"})
        assert ok.status_code == 200 and ok.json()["transaction_id"] == edge

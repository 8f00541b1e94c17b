"""Every kind of bad input gets a 4xx naming what is wrong, never a 500, and is counted."""

from __future__ import annotations

import json
import socket
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fraud_assets.service.schemas import MAX_BODY_BYTES, MAX_TRANSACTIONS


def _row(transactions, **changes):
    row = dict(transactions[0])
    for key, value in changes.items():
        if value is _DROP:
            row.pop(key)
        else:
            row[key] = value
    return row


_DROP = object()


def _literal(transactions, field: str, literal: str) -> bytes:
    """A body whose ``field`` holds a raw JSON token that json.dumps would never write."""
    row = _row(transactions, **{field: "__X__"})
    return json.dumps(row).replace('"__X__"', literal).encode()


def _errors_by_kind(client) -> dict[str, float]:
    families = text_string_to_metric_families(client.get("/metrics").text)
    (errors,) = [f for f in families if f.name == "fraud_service_errors"]
    return {s.labels["kind"]: s.value for s in errors.samples if s.name.endswith("_total")}


# (id, body builder, expected status, expected error kind, locations that must be named)
CASES = [
    ("truncated-json", lambda t: b'{"Time": 1,', 400, "malformed_json", [[]]),
    ("not-json", lambda t: b"hello", 400, "malformed_json", [[]]),
    ("empty-body", lambda t: b"", 400, "malformed_json", [[]]),
    ("bad-utf8", lambda t: b'{"Time": "\xff\xfe"}', 400, "malformed_json", [[]]),
    ("deep-nesting", lambda t: b"[" * 200_000, 400, "malformed_json", [[]]),
    ("scalar", lambda t: b"42", 422, "validation", [[]]),
    ("missing-field", lambda t: _row(t, V7=_DROP), 422, "validation", [["V7"]]),
    ("extra-field", lambda t: _row(t, merchant="shop"), 422, "validation", [["merchant"]]),
    ("label-field", lambda t: _row(t, Class=0), 422, "validation", [["Class"]]),
    ("text-value", lambda t: _row(t, V3="abc"), 422, "validation", [["V3"]]),
    ("numeric-text", lambda t: _row(t, V3="1.5"), 422, "validation", [["V3"]]),
    ("null-value", lambda t: _row(t, V4=None), 422, "validation", [["V4"]]),
    ("boolean-value", lambda t: _row(t, V5=True), 422, "validation", [["V5"]]),
    ("array-value", lambda t: _row(t, V6=[1.0]), 422, "validation", [["V6"]]),
    ("nan-literal", lambda t: _literal(t, "V1", "NaN"), 422, "validation", [["V1"]]),
    ("infinity-literal", lambda t: _literal(t, "V2", "Infinity"), 422, "validation", [["V2"]]),
    ("minus-infinity", lambda t: _literal(t, "Time", "-Infinity"), 422, "validation", [["Time"]]),
    ("overflowing-float", lambda t: _literal(t, "V8", "1e999"), 422, "validation", [["V8"]]),
    ("huge-integer", lambda t: _literal(t, "V9", "1" + "0" * 400), 422, "validation", [["V9"]]),
    ("beyond-float32", lambda t: _row(t, V10=1e39), 422, "validation", [["V10"]]),
    # Inside float32 but beyond what the model's scaling keeps finite: the files' limit too.
    ("beyond-model-range", lambda t: _row(t, Amount=1e31), 422, "validation", [["Amount"]]),
    ("negative-amount", lambda t: _row(t, Amount=-1.0), 422, "validation", [["Amount"]]),
    ("bad-id", lambda t: _row(t, transaction_id=[1]), 422, "validation", [["transaction_id"]]),
    ("blank-id", lambda t: _row(t, transaction_id="  "), 422, "validation", [["transaction_id"]]),
    # Which V1 would be scored? Either order is refused (the parsers keep the last).
    ("repeated-field", lambda t: _literal(t, "V1", '2, "V1": 1e308'), 422, "validation", [["V1"]]),
    ("repeated-field-last-valid", lambda t: _literal(t, "V1", '1e308, "V1": 2'), 422, "validation", [["V1"]]),
    ("repeated-in-items", lambda t: json.dumps([t[0], t[1]]).encode().replace(b'"V2"', b'"V2": 0, "V2"'),
     422, "validation", [[0, "V2"], [1, "V2"]]),
    ("empty-list", lambda t: [], 422, "validation", [[]]),
    ("non-object-item", lambda t: [t[0], 7], 422, "validation", [[1]]),
    (
        "errors-in-several-items",
        lambda t: [t[0], _row(t, V3="x"), t[2], _row(t, Amount=_DROP, Class=1)],
        422, "validation", [[1, "V3"], [3, "Amount"], [3, "Class"]],
    ),
    ("too-many-items", lambda t: [t[0]] * (MAX_TRANSACTIONS + 1), 413, "too_large", [[]]),
    ("body-over-limit", lambda t: b" " * (MAX_BODY_BYTES + 1), 413, "too_large", [[]]),
]


@pytest.mark.parametrize(
    ("body", "status", "kind", "locations"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_is_a_4xx_naming_the_fields(
    client, transactions, body, status, kind, locations
):
    before = _errors_by_kind(client)
    document = body(transactions)
    payload = document if isinstance(document, bytes) else json.dumps(document).encode()
    response = client.post("/predict", content=payload, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    named = [error["loc"][1:] for error in response.json()["detail"]]
    for location in locations:
        assert location in named, (location, named)
    after = _errors_by_kind(client)
    assert after[kind] == before[kind] + 1
    assert after["internal"] == before["internal"] == 0


@pytest.mark.parametrize("transaction_id", ['say "V1"', 'V1", "V1'])
def test_an_id_holding_quotes_or_a_field_name_is_not_a_repeated_field(client, transactions, transaction_id):
    # Its escaped quotes make the body look suspect: read again, it holds no repeated field.
    response = client.post("/predict", json=_row(transactions, transaction_id=transaction_id))
    assert response.status_code == 200, response.text
    assert response.json()["transaction_id"] == transaction_id


def test_streamed_body_over_the_limit_is_413(client):
    """No Content-Length (chunked upload): the limit is enforced while reading."""

    def chunks():
        for _ in range(MAX_BODY_BYTES // 65_536 + 2):
            yield b" " * 65_536

    response = client.post("/predict", content=chunks())
    assert response.status_code == 413
    assert "limit" in response.json()["detail"][0]["msg"]


def test_error_list_is_bounded(client, transactions):
    rows = [_row(transactions, V1="x", V2="y") for _ in range(100)]
    response = client.post("/predict", json=rows)
    assert response.status_code == 422
    document = response.json()
    assert len(document["detail"]) == 50 and document["more_errors"] == 150


def test_wrong_method_is_4xx(client):
    assert client.get("/predict").status_code == 405


def test_a_client_leaving_mid_body_is_not_an_internal_error(client, service):
    """Alerts on internal errors must mean bugs, not clients that went away."""
    before = _errors_by_kind(client)
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"Time": 1'
        )
    after = before
    for _ in range(100):  # the server notices the closed socket asynchronously
        after = _errors_by_kind(client)
        if after["client_disconnect"] > before["client_disconnect"]:
            break
        time.sleep(0.05)
    assert after["client_disconnect"] == before["client_disconnect"] + 1
    assert after["internal"] == before["internal"]

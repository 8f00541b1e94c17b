"""GET /metrics (parsed, linted by promtool) and GET /health."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families


def _samples(client) -> dict:
    families = text_string_to_metric_families(client.get("/metrics").text)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def _types(client) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(client.get("/metrics").text)}


def test_metrics_count_predictions_flags_and_latency(client, models, transactions):
    before = _samples(client)
    response = client.post("/predict", json=transactions[:100])
    single = client.post("/predict", json=transactions[100])
    assert response.status_code == single.status_code == 200
    flagged = sum(a["is_fraud"] for a in response.json()) + single.json()["is_fraud"]
    after = _samples(client)

    def delta(name, labels=()):
        return after[(name, labels)] - before.get((name, labels), 0.0)

    assert delta("fraud_predictions_total") == 101
    assert delta("fraud_flagged_total") == flagged
    assert delta("fraud_service_request_duration_seconds_count") == 2
    assert delta("fraud_service_request_duration_seconds_bucket", (("le", "+Inf"),)) == 2
    # Histogram buckets are cumulative: never decreasing with `le`, ending at the count.
    buckets = {
        labels[0][1]: value for (name, labels), value in after.items()
        if name == "fraud_service_request_duration_seconds_bucket"
    }
    assert {"0.01", "+Inf"} <= set(buckets)
    counts = [buckets[le] for le in sorted(buckets, key=float)]
    assert counts == sorted(counts), buckets
    assert buckets["+Inf"] == after[("fraud_service_request_duration_seconds_count", ())]
    version = (("model_version", models[0].version), ("role", "serving"))
    assert after[("fraud_model_info", version)] == 1
    assert after[("fraud_service_model_threshold", ())] == pytest.approx(models[0].threshold)
    for kind in ("malformed_json", "validation", "too_large", "internal"):
        assert ("fraud_service_errors_total", (("kind", kind),)) in after


def test_metric_types(client):
    types = _types(client)
    assert types["fraud_predictions"] == types["fraud_flagged"] == "counter"
    assert types["fraud_service_errors"] == "counter"
    assert types["fraud_service_request_duration_seconds"] == "histogram"
    assert types["fraud_model_info"] == "gauge"


def test_metrics_pass_promtool(client, transactions):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    client.post("/predict", json=transactions[:3])
    result = subprocess.run(
        [promtool, "check", "metrics"], input=client.get("/metrics").text,
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


def test_health_reports_the_loaded_model(client, models):
    response = client.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok" and health["model_loaded"] is True
    assert health["model_version"] == models[0].version
    loaded = datetime.fromisoformat(health["loaded_since"])
    assert loaded.tzinfo is not None and loaded <= datetime.now(loaded.tzinfo)
    assert health["last_reload_error"] is None

"""Job groups and metric names pushed to the Pushgateway.

Every pushed family is a gauge describing one run: the run's own figures and its
success or failure time. Totals across runs are computed in Prometheus from these
(``monitoring/rules/fraud_run_totals.yml``), never accumulated here.
"""

from __future__ import annotations

JOB_SCORING = "fraud_scoring"
JOB_TRAINING = "fraud_training"
JOB_DRIFT = "fraud_drift"
JOB_REALIZED = "fraud_realized_performance"
# Jobs that run in Dagster and can fail as a run; realised performance is pushed by a
# step of another job, so it has no failure of its own to record.
JOBS: tuple[str, ...] = (JOB_SCORING, JOB_TRAINING, JOB_DRIFT)

# Scoring
SCORING_ROWS = "fraud_scoring_rows"
SCORING_FLAGGED = "fraud_scoring_flagged"
SCORING_FLAGGED_RATIO = "fraud_scoring_flagged_ratio"
SCORING_DURATION = "fraud_scoring_duration_seconds"
# Training
MODEL_AUPRC = "fraud_model_auprc"
MODEL_ROC_AUC = "fraud_model_roc_auc"
MODEL_THRESHOLD = "fraud_model_threshold"
TRAINING_DURATION = "fraud_training_duration_seconds"
TRAINING_GATE_PASSED = "fraud_training_gate_passed"
MODEL_INFO = "fraud_model_info"
# Drift
DRIFT_PSI = "fraud_drift_psi"
DRIFT_WASSERSTEIN = "fraud_drift_wasserstein_scaled"
DRIFT_SHARE = "fraud_drift_share"
DRIFT_DETECTED = "fraud_drift_detected"
DRIFT_DURATION = "fraud_drift_duration_seconds"
# Realised performance: figures of one transaction day once its labels arrived.
REALIZED_DAY = "fraud_realized_day_timestamp_seconds"
REALIZED_MATURE = "fraud_realized_mature"
REALIZED_ROWS = "fraud_realized_rows"
REALIZED_FRAUDS = "fraud_realized_frauds"
REALIZED_ALERTS = "fraud_realized_alerts"
REALIZED_AUPRC = "fraud_realized_auprc"
REALIZED_PRECISION = "fraud_realized_precision"
REALIZED_RECALL = "fraud_realized_recall"
REALIZED_COST = "fraud_realized_cost"
REALIZED_KNOWN_FRAUD_SHARE = "fraud_realized_known_fraud_share"
REALIZED_MODEL_INFO = "fraud_realized_model_info"

# Roles of fraud_model_info. "scoring" is pushed by the scoring job so a dashboard can show
# which model actually scored the last batch next to the one training promoted.
ROLE_CANDIDATE = "candidate"
ROLE_PRODUCTION = "production"
ROLE_SCORING = "scoring"
ROLE_CHALLENGER = "challenger"
# The realised-performance groups are keyed by role, so the set must stay small and fixed:
# each value is one group that lives in the gateway for ever.
REALIZED_ROLES: tuple[str, ...] = (ROLE_PRODUCTION, ROLE_CHALLENGER)


def last_success_metric(job: str) -> str:
    return f"{job}_last_success_timestamp_seconds"


def last_failure_metric(job: str) -> str:
    return f"{job}_last_failure_timestamp_seconds"


METRIC_NAMES: dict[str, frozenset[str]] = {
    JOB_SCORING: frozenset(
        {
            SCORING_ROWS,
            SCORING_FLAGGED,
            SCORING_FLAGGED_RATIO,
            SCORING_DURATION,
            MODEL_INFO,
            last_success_metric(JOB_SCORING),
            last_failure_metric(JOB_SCORING),
        }
    ),
    JOB_TRAINING: frozenset(
        {
            MODEL_AUPRC,
            MODEL_ROC_AUC,
            MODEL_THRESHOLD,
            TRAINING_DURATION,
            TRAINING_GATE_PASSED,
            MODEL_INFO,
            last_success_metric(JOB_TRAINING),
            last_failure_metric(JOB_TRAINING),
        }
    ),
    JOB_DRIFT: frozenset(
        {
            DRIFT_PSI,
            DRIFT_WASSERSTEIN,
            DRIFT_SHARE,
            DRIFT_DETECTED,
            DRIFT_DURATION,
            last_success_metric(JOB_DRIFT),
            last_failure_metric(JOB_DRIFT),
        }
    ),
    JOB_REALIZED: frozenset(
        {
            REALIZED_DAY,
            REALIZED_MATURE,
            REALIZED_ROWS,
            REALIZED_FRAUDS,
            REALIZED_ALERTS,
            REALIZED_AUPRC,
            REALIZED_PRECISION,
            REALIZED_RECALL,
            REALIZED_COST,
            REALIZED_KNOWN_FRAUD_SHARE,
            REALIZED_MODEL_INFO,
            last_success_metric(JOB_REALIZED),
        }
    ),
}
ALL_METRIC_NAMES: frozenset[str] = frozenset().union(*METRIC_NAMES.values())

"""EC2, S3 lifecycle, CloudWatch agent and logrotate files under deployment/.

The EC2 and S3 files are validated against the API models shipped in botocore (the same
check the AWS CLI makes before sending a request), then their security properties are
asserted. The CloudWatch agent's JSON schema is not available from PyPI or Debian, so its
config is checked by hand against the keys this project uses (see _CW_FILE_KEYS).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from .conftest import DEPLOYMENT, run, system_tool


def _load(name: str):
    return json.loads((DEPLOYMENT / name).read_text())


@cache
def _service(name: str):
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


def _validate(service: str, operation: str, params: dict) -> None:
    from botocore.validate import ParamValidator

    shape = _service(service).operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape).generate_report()
    assert not report, report


def _assert_encrypted_gp3_root(mappings: list[dict]) -> None:
    (root,) = mappings
    ebs = root["Ebs"]
    assert ebs["VolumeType"] == "gp3"
    assert ebs["Encrypted"] is True
    assert ebs["DeleteOnTermination"] is True
    assert ebs["VolumeSize"] >= 30


def test_block_devices_encrypted_gp3() -> None:
    mappings = _load("block-devices.json")
    _validate("ec2", "RunInstances", {"ImageId": "ami-0", "MinCount": 1, "MaxCount": 1,
                                      "BlockDeviceMappings": mappings})  # fmt: skip
    _assert_encrypted_gp3_root(mappings)


def test_spot_launch_spec_enforces_imdsv2_for_containers() -> None:
    spec = _load("spot-launch-spec.json")
    # A RunInstances request (`aws ec2 run-instances --cli-input-json`): the legacy
    # RequestSpotInstances launch specification has no MetadataOptions at all.
    _validate("ec2", "RunInstances", spec)
    request_spot = _service("ec2").shape_for("RequestSpotLaunchSpecification")
    assert "MetadataOptions" not in request_spot.members

    metadata = spec["MetadataOptions"]
    assert metadata["HttpTokens"] == "required"
    assert metadata["HttpPutResponseHopLimit"] == 2
    assert metadata["HttpEndpoint"] == "enabled"
    assert spec["InstanceMarketOptions"]["MarketType"] == "spot"
    assert spec["IamInstanceProfile"] == {"Name": "CardFraudProfile"}
    _assert_encrypted_gp3_root(spec["BlockDeviceMappings"])
    assert spec["BlockDeviceMappings"] == _load("block-devices.json")
    # Site-specific values are passed on the command line, not committed.
    assert not {"SecurityGroupIds", "SubnetId", "KeyName", "UserData"} & set(spec)


def test_lifecycle_rules() -> None:
    lifecycle = _load("s3-lifecycle.json")
    _validate("s3", "PutBucketLifecycleConfiguration",
              {"Bucket": "card-fraud-prod-predictions", "LifecycleConfiguration": lifecycle})  # fmt: skip
    rules = {r["ID"]: r for r in lifecycle["Rules"]}
    assert all(r["Status"] == "Enabled" for r in rules.values())
    assert len({r["ID"] for r in lifecycle["Rules"]}) == len(lifecycle["Rules"])

    (predictions,) = [r for r in rules.values() if r["Filter"].get("Prefix") == "predictions/"]
    assert predictions["Expiration"] == {"Days": 90}

    (models,) = [r for r in rules.values() if "NoncurrentVersionExpiration" in r]
    assert models["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": 30,
        "NewerNoncurrentVersions": 5,
    }
    assert "Expiration" not in models, "current model versions never expire"

    (multipart,) = [r for r in rules.values() if "AbortIncompleteMultipartUpload" in r]
    assert multipart["Filter"] == {"Prefix": ""}
    assert multipart["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    # Only predictions expire; current model versions, pointers and drift reports never do.
    assert [r for r in rules.values() if "Expiration" in r] == [predictions]


# Keys accepted by the CloudWatch agent for one entry of logs.logs_collected.files.collect_list
# (agent schema, "logsFilesDefinition"); the schema sets additionalProperties to false there.
_CW_FILE_KEYS = {
    "file_path", "log_group_name", "log_stream_name", "log_group_class",
    "multi_line_start_pattern", "timestamp_format", "timezone", "trim_timestamp", "encoding",
    "auto_removal", "backpressure_mode", "blacklist", "publish_multi_logs", "retention_in_days",
    "filters", "service.name", "deployment.environment",
}  # fmt: skip
_CW_TOP_KEYS = {"agent", "metrics", "logs", "traces"}
_CW_LOGS_KEYS = {"logs_collected", "metrics_collected", "log_stream_name",
                 "force_flush_interval", "credentials", "endpoint_override", "concurrency"}  # fmt: skip
_CW_METRICS_KEYS = {"namespace", "aggregation_dimensions", "append_dimensions",
                    "metrics_collected", "force_flush_interval", "credentials", "endpoint_override"}  # fmt: skip


def test_cloudwatch_agent_config_structure() -> None:
    config = _load("cloudwatch-config.json")
    assert set(config) <= _CW_TOP_KEYS
    assert isinstance(config["agent"]["metrics_collection_interval"], int)

    logs = config["logs"]
    assert set(logs) <= _CW_LOGS_KEYS
    assert set(logs["logs_collected"]) == {"files"}
    entries = logs["logs_collected"]["files"]["collect_list"]
    assert entries and len({json.dumps(e, sort_keys=True) for e in entries}) == len(entries)
    for entry in entries:
        assert set(entry) <= _CW_FILE_KEYS, set(entry) - _CW_FILE_KEYS
        assert entry["file_path"].startswith("/var/log/")
        if "timezone" in entry:
            assert entry["timezone"] in {"Local", "LOCAL", "UTC"}
        # Retention is the operator's: the host role has no logs:PutRetentionPolicy.
        assert "retention_in_days" not in entry
    assert {e["log_group_name"] for e in entries} == {"/card-fraud/dagster", "/card-fraud/system"}

    metrics = config["metrics"]
    assert set(metrics) <= _CW_METRICS_KEYS
    assert metrics["metrics_collected"]
    for section in metrics["metrics_collected"].values():
        assert section["measurement"]


def test_cloudwatch_ships_exactly_the_unit_log_files() -> None:
    config = _load("cloudwatch-config.json")
    shipped = {
        e["file_path"]
        for e in config["logs"]["logs_collected"]["files"]["collect_list"]
        if e["log_group_name"] == "/card-fraud/dagster"
    }
    written = set()
    for unit in (DEPLOYMENT / "systemd").glob("*.service"):
        written |= set(re.findall(r"^StandardOutput=append:(\S+)$", unit.read_text(), re.MULTILINE))
    assert shipped == written and len(written) == 7


def test_logrotate_rules_parse(tmp_path: Path) -> None:
    logrotate = system_tool("logrotate")
    text = (DEPLOYMENT / "logrotate" / "card-fraud").read_text()
    assert "/var/log/card-fraud/*.log" in text
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (log_dir / "daemon.log").write_text("x" * 10)
    config = tmp_path / "card-fraud"
    # `su root adm` needs the adm group, which a minimal container may lack.
    config.write_text(
        text.replace("/var/log/card-fraud", str(log_dir)).replace("    su root adm\n", "")
    )
    result = run([logrotate, "--debug", "--state", str(tmp_path / "state"), str(config)])
    assert result.returncode == 0, result.stderr
    assert "error" not in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
    assert "copytruncate" in text

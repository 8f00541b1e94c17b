"""Every JSON file under deployment/ is strict JSON without duplicate keys.

The AWS CLI reads these with `file://`; a duplicate key is legal for Python's parser but
silently drops one of the values, so it is rejected here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import DEPLOYMENT

JSON_FILES = sorted(DEPLOYMENT.rglob("*.json"))
EXPECTED = {
    "iam-trust-policy.json",
    "iam-role-policy.json",
    "block-devices.json",
    "cloudwatch-config.json",
    "s3-lifecycle.json",
    "spot-launch-spec.json",
}


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [k for k, _ in pairs]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise ValueError(f"duplicate keys: {sorted(duplicates)}")
    return dict(pairs)


def test_guide_file_names_exist() -> None:
    # The old guide's commands name these files; users will look for them there.
    assert EXPECTED <= {p.name for p in JSON_FILES}


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: str(p.relative_to(DEPLOYMENT)))
def test_json_parses_strictly(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)

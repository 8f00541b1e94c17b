"""Bringing the model registry up from a copy made elsewhere: the replica in the
disaster-recovery region, and the replicated backups behind it.

S3 replication gives no order between objects: the production pointer can arrive before the
files of the model it names, and an object can lag by up to the replication time. So nothing
is trusted because it is present: the pointer's model is checked file by file (presence,
SHA-256 against the manifest, that it loads) before the copy is declared able to serve.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from fraud_assets.core.model.bundle import MANIFEST_FILE, MODEL_FILE, PREPROCESSING_FILE
from fraud_assets.core.model.registry import PRODUCTION_POINTER, ModelRegistry
from fraud_assets.core.storage.locations import read_json, write_json_atomic

# Versions made by training end with the first 8 hex digits of the model file's SHA-256:
# models saved before manifests carried digests are still checked by that.
_DIGEST_IN_VERSION = re.compile(r"^xgb-\d{8}T\d{6}Z-(?P<digest>[0-9a-f]{8})$")


class RecoveryFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class RecoveredModel:
    version: str
    registry_url: str
    files_checked: tuple[str, ...]
    # Where files the replica lacked or held damaged were taken from; None when the replica
    # was complete.
    repaired_from: str | None = None
    pointer_from: str | None = None


def version_problems(registry: ModelRegistry, version: str) -> list[str]:
    """What stops ``version`` in ``registry`` from serving; empty when it can."""
    fs, location = registry.fs, registry.location
    manifest_path = location.path(version, MANIFEST_FILE)
    if not fs.exists(manifest_path):
        return [f"{version}: no {MANIFEST_FILE}"]
    try:
        manifest = read_json(fs, manifest_path)
    except ValueError as error:
        return [f"{version}: {MANIFEST_FILE} is not JSON ({error})"]
    digests = manifest.get("sha256") or {}
    problems = []
    for name in manifest.get("files") or [MODEL_FILE, PREPROCESSING_FILE]:
        path = location.path(version, name)
        if not fs.exists(path):
            problems.append(f"{version}: {name} missing")
            continue
        actual = hashlib.sha256(fs.cat_file(path)).hexdigest()
        expected = digests.get(name)
        named = _DIGEST_IN_VERSION.match(version)
        if expected is None and name == MODEL_FILE and named:
            expected, actual = named["digest"], actual[:8]
        if expected is not None and actual != expected:
            problems.append(f"{version}: {name} has SHA-256 {actual}, the manifest says {expected}")
    if not problems:
        try:
            registry.load(version)
        except Exception as error:  # noqa: BLE001 - any reason it cannot load is a finding
            problems.append(f"{version}: does not load ({type(error).__name__}: {error})")
    return problems


def checked_files(registry: ModelRegistry, version: str) -> tuple[str, ...]:
    manifest = read_json(registry.fs, registry.location.path(version, MANIFEST_FILE))
    return (MANIFEST_FILE, *(manifest.get("files") or [MODEL_FILE, PREPROCESSING_FILE]))


def _newest_complete_earlier(registry: ModelRegistry, record: dict) -> str | None:
    for entry in reversed(record.get("history", [])):
        version = entry.get("version")
        if version and not version_problems(registry, version):
            return version
    return None


def recover_production(replica: ModelRegistry, backup: ModelRegistry | None = None) -> RecoveredModel:
    """Make ``replica`` able to serve its production model, or raise :class:`RecoveryFailed`.

    The pointer is the replica's own; when it has none yet, the backup's. A model the replica
    lacks or holds damaged is copied from the backup when the backup's copy passes the same
    checks. An older model is never put in service silently: that choice is the operator's.
    """
    pointer_from = None
    record = replica.production_record()
    if record is None and backup is not None:
        record = backup.production_record()
        pointer_from = backup.location.url_of(PRODUCTION_POINTER) if record else None
    if record is None:
        sources = [replica.location.url_of()] + ([backup.location.url_of()] if backup else [])
        raise RecoveryFailed(f"no production pointer in {' or '.join(sources)}")
    version = record["version"]

    problems = version_problems(replica, version)
    repaired_from = None
    if problems and backup is not None and not version_problems(backup, version):
        backup.load(version).save(replica.fs, replica.location.path(version))
        repaired_from = backup.location.url_of(version)
        problems = version_problems(replica, version)
    if problems:
        fallback = _newest_complete_earlier(replica, record)
        hint = (f"; the newest earlier production model complete here is {fallback} "
                f"(`fraud model promote {fallback}` with these settings serves it)") if fallback else ""
        raise RecoveryFailed(f"production model {version} cannot serve from "
                             f"{replica.location.url_of()}: {'; '.join(problems)}{hint}")
    if pointer_from is not None:
        write_json_atomic(replica.fs, replica.location.path(PRODUCTION_POINTER), record)
    return RecoveredModel(
        version=version,
        registry_url=replica.location.url_of(),
        files_checked=checked_files(replica, version),
        repaired_from=repaired_from,
        pointer_from=pointer_from,
    )

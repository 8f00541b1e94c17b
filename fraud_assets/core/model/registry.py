"""Model registry on a local folder or an S3 prefix.

Layout under the registry root::

    <version>/model.ubj, preprocessing.json, manifest.json   one folder per trained model
    latest.json                                               the newest trained candidate
    production.json                                           the model in service + history
    challenger.json                                           the model scored in shadow + decisions

Every version stays; promotion only rewrites the small pointer, so rolling back is the same
operation as promoting, pointed at an older version.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from datetime import UTC, datetime

from fraud_assets.core.model.bundle import MANIFEST_FILE, FraudModel
from fraud_assets.core.storage.locations import Location, read_json, write_json_atomic

LATEST_POINTER = "latest.json"
PRODUCTION_POINTER = "production.json"
CHALLENGER_POINTER = "challenger.json"
_POINTERS = frozenset({LATEST_POINTER, PRODUCTION_POINTER, CHALLENGER_POINTER})
_VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class UnknownModelVersion(LookupError):
    pass


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ModelRegistry:
    def __init__(self, location: Location, *, on_pointer_change: Callable[[ModelRegistry], None] | None = None):
        """``on_pointer_change(registry)``: called after production or the challenger
        changed (MLflow's aliases follow this way)."""
        self.location = location
        self.fs = location.fs
        self.on_pointer_change = on_pointer_change

    def _pointers_changed(self) -> None:
        if self.on_pointer_change is not None:
            self.on_pointer_change(self)

    def _path(self, *parts: str) -> str:
        return self.location.path(*parts)

    def _check_version(self, version: str) -> None:
        if not _VERSION_PATTERN.match(version):
            raise UnknownModelVersion(f"invalid model version {version!r}")
        if not self.fs.exists(self._path(version, MANIFEST_FILE)):
            raise UnknownModelVersion(
                f"no model version {version!r} in {self.location.url_of()}; "
                f"known: {', '.join(self.version_ids()) or 'none'}"
            )

    def save(self, model: FraudModel) -> str:
        # A version names a folder beside the pointers: a manifest from elsewhere (`fraud model
        # add`) must not name one of them, or a path out of the registry.
        if not _VERSION_PATTERN.match(model.version) or model.version in _POINTERS:
            raise ValueError(f"invalid model version {model.version!r}: letters, digits, '.', '_' and "
                             f"'-', not a pointer's name ({', '.join(sorted(_POINTERS))})")
        model.save(self.fs, self._path(model.version))
        write_json_atomic(
            self.fs, self._path(LATEST_POINTER), {"version": model.version, "saved_at": _now()}
        )
        return model.version

    def version_ids(self) -> list[str]:
        """Complete versions (with a manifest), oldest first: ids start with a UTC timestamp."""
        if not self.fs.exists(self.location.root):
            return []
        versions = []
        for entry in self.fs.ls(self.location.root, detail=True):
            name = posixpath.basename(entry["name"].rstrip("/"))
            if entry["type"] == "directory" and self.fs.exists(self._path(name, MANIFEST_FILE)):
                versions.append(name)
        return sorted(versions)

    def describe_versions(self) -> list[dict]:
        production, challenger = self.production_version(), self.challenger_version()
        rows = []
        for version in self.version_ids():
            manifest = read_json(self.fs, self._path(version, MANIFEST_FILE))
            test = manifest.get("metrics", {}).get("test", {})
            rows.append(
                {
                    "version": version,
                    "created_at": manifest.get("created_at"),
                    "test_auprc": test.get("auprc"),
                    "threshold": manifest.get("threshold"),
                    "production": version == production,
                    "challenger": version == challenger,
                }
            )
        return rows

    def manifest(self, version: str) -> dict:
        """A version's manifest alone (metrics, threshold, drift reference), without its model."""
        self._check_version(version)
        return read_json(self.fs, self._path(version, MANIFEST_FILE))

    def load(self, version: str) -> FraudModel:
        self._check_version(version)
        return FraudModel.load(self.fs, self._path(version))

    def _pointer(self, name: str) -> dict | None:
        path = self._path(name)
        return read_json(self.fs, path) if self.fs.exists(path) else None

    def latest_version(self) -> str | None:
        pointer = self._pointer(LATEST_POINTER)
        return pointer["version"] if pointer else None

    def production_record(self) -> dict | None:
        return self._pointer(PRODUCTION_POINTER)

    def production_version(self) -> str | None:
        record = self.production_record()
        return record["version"] if record else None

    def load_latest(self) -> FraudModel:
        version = self.latest_version()
        if version is None:
            raise UnknownModelVersion(f"no trained model in {self.location.url_of()}")
        return self.load(version)

    def load_production(self) -> FraudModel | None:
        version = self.production_version()
        return self.load(version) if version else None

    def promote(self, version: str, *, reason: str, figures: dict | None = None) -> dict:
        """Point production at ``version``; the previous pointer goes into the history. A
        challenger promoted this way stops being the challenger."""
        self._check_version(version)
        previous = self.production_record()
        history = list(previous.get("history", [])) if previous else []
        if previous:
            history.append({k: previous.get(k) for k in ("version", "promoted_at", "reason")})
        record = {"version": version, "promoted_at": _now(), "reason": reason, "history": history[-100:]}
        if figures is not None:
            record["figures"] = figures
        write_json_atomic(self.fs, self._path(PRODUCTION_POINTER), record)
        if self.challenger_version() == version:
            self.end_challenge("promoted", reason=reason, figures=figures)  # notifies
        else:
            self._pointers_changed()
        return record

    def challenger_record(self) -> dict | None:
        return self._pointer(CHALLENGER_POINTER)

    def challenger_version(self) -> str | None:
        record = self.challenger_record()
        return record.get("version") if record else None

    def load_challenger(self) -> FraudModel | None:
        version = self.challenger_version()
        return self.load(version) if version else None

    def set_challenger(
        self, version: str, *, reason: str, since: str | None = None, trained_through: str | None = None
    ) -> dict:
        """Score ``version`` in shadow beside production from day ``since`` (default: today);
        a challenger it replaces is recorded as superseded. ``trained_through`` is the last
        transaction day its training data held: it is judged only on later days."""
        self._check_version(version)
        current = self.challenger_version()
        if current == version:
            return self.challenger_record()
        if current is not None:
            self.end_challenge("superseded", reason=f"replaced by {version}")
        history = (self.challenger_record() or {}).get("history", [])
        record = {
            "version": version,
            "since": since or _now()[:10],
            "trained_through": trained_through,
            "reason": reason,
            "history": history,
        }
        write_json_atomic(self.fs, self._path(CHALLENGER_POINTER), record)
        self._pointers_changed()
        return record

    def end_challenge(self, outcome: str, *, reason: str, figures: dict | None = None) -> dict:
        """Record how the current challenge ended (promoted, retired, superseded) and clear
        the challenger."""
        record = self.challenger_record() or {"history": []}
        history = list(record.get("history", []))
        if record.get("version"):
            history.append(
                {
                    "version": record["version"],
                    "since": record.get("since"),
                    "outcome": outcome,
                    "decided_at": _now(),
                    "reason": reason,
                    "figures": figures or {},
                }
            )
        cleared = {"version": None, "history": history[-100:]}
        write_json_atomic(self.fs, self._path(CHALLENGER_POINTER), cleared)
        self._pointers_changed()
        return cleared

    def copy_to(self, target: ModelRegistry, versions: list[str] | None = None) -> list[str]:
        """Copy versions (all by default) and the pointers into ``target``; used for backup
        and restore. A version already complete in ``target`` is not copied again."""
        copied = []
        present = set(target.version_ids())  # listed once: a listing is a request per version
        for version in versions if versions is not None else self.version_ids():
            if version in present:
                continue
            model = self.load(version)  # checks the version
            model.save(target.fs, target._path(version))
            copied.append(version)
        for pointer in (LATEST_POINTER, PRODUCTION_POINTER, CHALLENGER_POINTER):
            document = self._pointer(pointer)
            if document is not None and versions is None:
                write_json_atomic(target.fs, target._path(pointer), document)
        if versions is None:
            target._pointers_changed()
        return copied

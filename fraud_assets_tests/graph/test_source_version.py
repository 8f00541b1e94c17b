"""Code versions from source: they move with the logic an asset runs, and only with it."""

import textwrap

import pytest

from fraud_assets.defs import source_version

CORE = """
from pkgv import deep


def rate(frauds, rows):
    return deep.share(frauds, rows)


def unused():
    return 0
"""

DEEP = """
def share(part, whole):
    return part / whole
"""

OTHER_CORE = """
LIMIT = 3
"""

ASSETS = """
import functools

from pkgv import core
from pkgv.other import LIMIT

GROUP = "g"


def _helper(rows):
    return core.rate(1, rows)


def unrelated():
    return LIMIT


@functools.cache
def scored(rows):
    return _helper(rows) + 1


def labelled(rows):
    return unrelated()
"""


@pytest.fixture
def package(tmp_path, monkeypatch):
    root = tmp_path / "pkgv"
    root.mkdir()
    (root / "__init__.py").write_text("")
    files = {"core.py": CORE, "deep.py": DEEP, "other.py": OTHER_CORE, "assets.py": ASSETS}
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))

    def version(function="scored"):
        source_version._parsed.cache_clear()
        source_version._module.cache_clear()
        return source_version.code_version("pkgv.assets", function, root="pkgv")

    def edit(name, old, new):
        path = root / name
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))

    yield version, edit
    source_version._parsed.cache_clear()
    source_version._module.cache_clear()


def test_version_is_stable_for_the_same_source(package):
    version, _ = package
    assert version() == version()
    assert len(version()) == source_version.VERSION_LENGTH


def test_version_moves_when_the_body_changes(package):
    version, edit = package
    before = version()
    edit("assets.py", "return _helper(rows) + 1", "return _helper(rows) + 2")
    assert version() != before


def test_version_moves_when_a_helper_of_the_module_changes(package):
    version, edit = package
    before = version()
    edit("assets.py", "return core.rate(1, rows)", "return core.rate(2, rows)")
    assert version() != before


def test_version_moves_when_an_imported_package_module_changes(package):
    version, edit = package
    before = version()
    edit("core.py", "return deep.share(frauds, rows)", "return deep.share(frauds, max(rows, 1))")
    assert version() != before


def test_version_moves_when_a_module_reached_through_another_changes(package):
    version, edit = package
    before = version()
    edit("deep.py", "return part / whole", "return part / whole if whole else 0.0")
    assert version() != before


def test_version_moves_with_any_part_of_a_reached_module(package):
    version, edit = package
    before = version()
    edit("core.py", "return 0", "return 1")  # same module, though never called
    assert version() != before


def test_version_stays_when_only_unrelated_code_or_the_decorator_changes(package):
    version, edit = package
    before, other = version(), version("labelled")
    edit("assets.py", "return LIMIT", "return LIMIT * 2")
    edit("assets.py", "@functools.cache", "@functools.lru_cache(maxsize=4)")
    edit("other.py", "LIMIT = 3", "LIMIT = 4")  # a module only `unrelated` reaches
    assert version() == before
    assert version("labelled") != other  # the function that calls it does move


def test_an_unknown_function_is_refused(package):
    version, _ = package
    with pytest.raises(ValueError, match="defines no"):
        version("missing")


def test_real_assets_reach_the_core_they_run():
    _, scoring = source_version.sources("fraud_assets.defs.assets.scoring", "daily_predictions")
    assert {"fraud_assets.core.model.scoring", "fraud_assets.core.data.tables",
            "fraud_assets.defs.batches", "fraud_assets.settings"} <= scoring
    assert "fraud_assets.core.monitoring.challenger" not in scoring
    _, evaluation = source_version.sources("fraud_assets.defs.assets.challenger", "challenger_evaluation")
    assert {"fraud_assets.core.monitoring.challenger", "fraud_assets.core.monitoring.performance"} <= evaluation
    pieces, drift = source_version.sources("fraud_assets.defs.assets.monitoring", "drift_statistics")
    assert {"fraud_assets.core.monitoring.drift", "fraud_assets.core.data.profile"} <= drift
    # Its own module counts by definition: the function, and the helper it calls.
    assert any("accumulator.report" in piece for piece in pieces)
    assert any("parquet.iter_batches" in piece for piece in pieces)
    assert not any("def " in piece and "drift_statistics(" in piece for piece in pieces)

"""The runtime install (`uv sync --locked --no-dev`, the README's first command and the image)
provides every third-party module the package imports: each one comes from a requirement in
pyproject.toml's [project] dependencies, not from the dev group nor from a dependency's own
dependencies (those change when the dependency does)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

from .conftest import REPO

PACKAGE = REPO / "fraud_assets"


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {_normalized(re.match(r"[A-Za-z0-9_.-]+", spec).group()) for spec in project["dependencies"]}


def imported_modules(root=PACKAGE) -> dict[str, str]:
    """Top-level third-party module -> the first file importing it, lazy imports included."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != root.name:
                    found.setdefault(top, str(path.relative_to(root.parent)))
    return found


def test_every_imported_module_comes_from_a_runtime_requirement() -> None:
    requirements = runtime_requirements()
    providers = importlib.metadata.packages_distributions()
    missing = {
        module: (where, providers.get(module))
        for module, where in imported_modules().items()
        if not requirements & {_normalized(d) for d in providers.get(module, [])}
    }
    assert not missing, f"imported, but not a runtime requirement (module: first file, distribution): {missing}"


def test_the_check_sees_lazy_imports_and_dev_only_modules(tmp_path) -> None:
    package = tmp_path / "fraud_assets"
    package.mkdir()
    (package / "late.py").write_text("import os\n\ndef f():\n    import yaml.constructor\n    from . import x\n")
    assert imported_modules(package) == {"yaml": "fraud_assets/late.py"}
    # pyyaml is a dev-group tool: the runtime install would miss it.
    assert "pyyaml" not in runtime_requirements()

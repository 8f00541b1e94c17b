"""Code versions read from the source: an asset's version changes whenever its logic can have.

Why a hash and not hand-written version strings: a hand-bumped "2" is only as true as the
memory of whoever last edited a helper three modules away, and the UI would then claim that
nothing changed. Why not a test that fails on a forgotten bump: it fails on every edit,
comments included, and is soon bumped blindly. So the version is computed when the module is
imported, from the source the asset can run:

- the body of the asset's function (its decorator, which holds descriptions, tags and
  automation, is not logic and is left out);
- every top-level function, class and constant of the same module that the body names, and
  what those name in turn;
- the whole source of every package module (``fraud_assets.*``) that any of these name, with
  every package module that module imports, transitively.

It errs on the side of a change: editing a module an asset imports changes its version even
when the edit touched a function the asset never calls, and the settings module reaches
nearly everything. A version that moves without need only marks the asset's code as changed
in the UI; a version that stays put while the logic changed would hide it. What it cannot see:
third-party libraries (XGBoost, NumPy) and the values of settings at run time; the model
version and data versions say those.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from pathlib import Path

PACKAGE = "fraud_assets"
VERSION_LENGTH = 12


def _source_file(module: str) -> Path | None:
    """The file of a package module, found on disk: importing it to ask would run it."""
    top, _, rest = module.partition(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations))).joinpath(*(rest.split(".") if rest else []))
    for candidate in (base / "__init__.py", base.with_suffix(".py") if rest else None):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _is_package(module: str) -> bool:
    path = _source_file(module)
    return path is not None and path.name == "__init__.py"


@functools.cache
def _parsed(module: str) -> tuple[str, ast.Module]:
    path = _source_file(module)
    if path is None or not path.is_file():
        raise ValueError(f"no Python source for module {module}")
    source = path.read_text(encoding="utf-8")
    return source, ast.parse(source)


def _imported_modules(module: str, tree: ast.AST, root: str) -> dict[str, str]:
    """Local name -> module of the package that it comes from, for every import in ``tree``."""
    package = module if _is_package(module) else module.rpartition(".")[0]
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == root or alias.name.startswith(root + "."):
                    found[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                if node.level else node.module or ""
            if source != root and not source.startswith(root + "."):
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found[alias.asname or alias.name] = submodule if _source_file(submodule) else source
    return found


@functools.cache
def _module_closure(module: str, root: str) -> frozenset[str]:
    """``module`` and every package module it imports, transitively."""
    seen: set[str] = set()
    pending = [module]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        _, tree = _parsed(current)
        pending.extend(_imported_modules(current, tree, root).values())
    return frozenset(seen)


def _top_level(tree: ast.Module) -> dict[str, ast.AST]:
    names: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        names[name.id] = node
    return names


def _logic(node: ast.AST) -> list[ast.AST]:
    """What of a definition runs: a function's signature and body, not its decorators."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return [node.args, *node.body] + ([node.returns] if node.returns else [])
    return [node]


def _source_of(source: str, node: ast.AST) -> str:
    return "\n".join(ast.get_source_segment(source, part) or ast.dump(part) for part in _logic(node))


def code_version(module: str, name: str, *, root: str = PACKAGE) -> str:
    """The code version of ``name`` (an asset's function) defined in ``module``."""
    source, tree = _parsed(module)
    definitions = _top_level(tree)
    if name not in definitions:
        raise ValueError(f"{module} defines no {name}")
    imports = _imported_modules(module, tree, root)
    pieces: list[str] = []
    modules: set[str] = set()
    pending, seen = [name], set()
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        if current in definitions:
            node = definitions[current]
            pieces.append(_source_of(source, node))
            used = {n.id for part in _logic(node) for n in ast.walk(part) if isinstance(n, ast.Name)}
            pending.extend(sorted(used - seen))
        elif current in imports:
            modules |= _module_closure(imports[current], root)
    digest = hashlib.sha256()
    for piece in pieces:
        digest.update(piece.encode())
    for dependency in sorted(modules):
        digest.update(dependency.encode() + b"\0" + _parsed(dependency)[0].encode())
    return digest.hexdigest()[:VERSION_LENGTH]

"""Code versions read from the source: an asset's version changes whenever its logic can have.

Why a hash and not hand-written version strings: a hand-bumped "2" is only as true as the
memory of whoever last edited a helper three modules away, and the UI would then claim that
nothing changed. Why not a test that fails on a forgotten bump: it fails on every edit,
comments included, and is soon bumped blindly. So the version is computed when the module is
imported, from the source the asset can run, followed name by name from its function:

- the asset's function (its decorator, which holds descriptions, tags and automation, is not
  logic and is left out), and every top-level function, class and constant of its own module
  that it names, and what those name in turn;
- every package module (``fraud_assets.*``) holding a definition reached that way, whole: a
  name the function uses from it (``score_file``, ``settings.today``, a class in a signature),
  and whatever that definition names in its own module or imports, transitively.

It errs on the side of a change within a module: editing any part of a module the asset
reaches changes its version, even a function it never calls. A module nothing reachable
names does not count, so a change to the challenger decision leaves the scoring asset's
version alone. What it cannot see: third-party libraries (XGBoost, NumPy), the values of
settings at run time (the model version and data versions say those), the IO managers that
store the asset's value, and a method called on an object whose class no reachable code
names (code here names its classes where it builds or annotates them).
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


def _imports(module: str, tree: ast.AST, root: str) -> dict[str, tuple[str, str | None]]:
    """Local name -> (package module, name in it), or (module, None) when the name is the
    module itself, for every import of the package in ``tree``."""
    package = module if _is_package(module) else module.rpartition(".")[0]
    found: dict[str, tuple[str, str | None]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == root or alias.name.startswith(root + "."):
                    local = alias.asname or alias.name.split(".")[0]
                    found[local] = (alias.name if alias.asname else local, None)
        elif isinstance(node, ast.ImportFrom):
            source = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                if node.level else node.module or ""
            if source != root and not source.startswith(root + "."):
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found[alias.asname or alias.name] = (
                    (submodule, None) if _source_file(submodule) else (source, alias.name)
                )
    return found


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


@functools.cache
def _module(module: str, root: str):
    source, tree = _parsed(module)
    return source, _top_level(tree), _imports(module, tree, root)


def _logic(node: ast.AST) -> list[ast.AST]:
    """What of a definition runs: a function's signature and body, not its decorators."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return [node.args, *node.body] + ([node.returns] if node.returns else [])
    return [node]


def _source_of(source: str, node: ast.AST) -> str:
    return "\n".join(ast.get_source_segment(source, part) or ast.dump(part) for part in _logic(node))


def _names_used(node: ast.AST, imports: dict[str, tuple[str, str | None]]):
    """(module, name) pairs a definition uses: ``module.name`` for an attribute of an imported
    module, ``None`` as the module for a plain name of the definition's own module."""
    module_bases = set()
    for part in _logic(node):
        for child in ast.walk(part):
            if isinstance(child, ast.Attribute) and isinstance(child.value, ast.Name):
                target = imports.get(child.value.id)
                if target is not None and target[1] is None:
                    module_bases.add(id(child.value))
                    yield target[0], child.attr
    for part in _logic(node):
        for child in ast.walk(part):
            if isinstance(child, ast.Name) and id(child) not in module_bases:
                yield None, child.id


def sources(module: str, name: str, *, root: str = PACKAGE) -> tuple[list[str], frozenset[str]]:
    """What the version of ``name`` in ``module`` covers: the source of the definitions of
    ``module`` it reaches, and the other package modules reached, whose whole source counts."""
    if name not in _module(module, root)[1]:
        raise ValueError(f"{module} defines no {name}")
    pieces: list[str] = []
    modules: set[str] = set()
    pending, seen = [(module, name)], set()
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        where, what = current
        source, definitions, imports = _module(where, root)
        if what in definitions:
            if where == module:
                pieces.append(_source_of(source, definitions[what]))
            else:
                modules.add(where)
            pending.extend(
                (used_module or where, used) for used_module, used in _names_used(definitions[what], imports)
            )
        elif what in imports:
            target, attribute = imports[what]
            if attribute is None:  # a module used as a value: all of it
                modules.add(target)
                pending.extend((target, definition) for definition in _module(target, root)[1])
            else:
                pending.append((target, attribute))
        elif _source_file(f"{where}.{what}"):  # a submodule reached as an attribute
            pending.extend((f"{where}.{what}", definition) for definition in _module(f"{where}.{what}", root)[1])
    return pieces, frozenset(modules)


def code_version(module: str, name: str, *, root: str = PACKAGE) -> str:
    """The code version of ``name`` (an asset's function) defined in ``module``."""
    pieces, modules = sources(module, name, root=root)
    digest = hashlib.sha256()
    for piece in pieces:
        digest.update(piece.encode())
    for dependency in sorted(modules):
        digest.update(dependency.encode() + b"\0" + _parsed(dependency)[0].encode())
    return digest.hexdigest()[:VERSION_LENGTH]

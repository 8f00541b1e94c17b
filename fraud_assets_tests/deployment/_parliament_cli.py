"""Runs parliament's CLI, supplying `pkg_resources` when setuptools does not.

parliament 1.6.4 imports `pkg_resources` only to locate two data files inside its own
package. Recent virtualenvs have no setuptools, so `parliament` fails before reading the
policy. This stand-in answers the same question with importlib.resources; when the real
module exists it is used instead. Arguments and stdin go to parliament unchanged.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import sys
import types

if importlib.util.find_spec("pkg_resources") is None:
    shim = types.ModuleType("pkg_resources")
    shim.resource_filename = lambda package, name: str(importlib.resources.files(package) / name)
    sys.modules["pkg_resources"] = shim

from parliament.cli import main

if __name__ == "__main__":
    sys.exit(main(["parliament", *sys.argv[1:]]))

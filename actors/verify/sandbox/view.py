"""Where a zygote's children look: qvr's own locations (a source tree, installed packages) and the
plan of the file view built from them (the allow-list itself: actors/verify/sandbox/isolation.py)."""

from __future__ import annotations

import os
import sys
from typing import Any


def qvr_locations() -> tuple[str | None, list[str]]:
    """(the source tree qvr runs from, or None for a regular install; qvr's own package folders
    in every site-packages on sys.path). Found from where the packages are, without importing
    ``pipelines``."""
    import importlib.util
    import site
    import sysconfig

    import actors

    site_dirs = {os.path.realpath(path) for path in (*site.getsitepackages(), sysconfig.get_paths()["purelib"],
                                                      sysconfig.get_paths()["platlib"])}
    root = os.path.realpath(os.path.dirname(os.path.dirname(actors.__file__)))
    packages = [os.path.join(path, name) for path in {*site_dirs, *(os.path.realpath(p) for p in sys.path if p)}
                for name in ("actors", "pipelines") if os.path.isfile(os.path.join(path, name, "__init__.py"))
                and os.path.isdir(os.path.join(path, "actors", "verify"))]
    spec = importlib.util.find_spec("pipelines")
    for location in (spec.submodule_search_locations or []) if spec else []:
        packages.append(os.path.realpath(location))
    return (None if root in site_dirs else root), sorted(set(packages))


def file_view(hidden: list[str]) -> dict[str, Any]:
    """This zygote's plan of its children's file view (see isolation.plan_view)."""
    from actors.verify.sandbox.isolation import plan_view

    project, packages = qvr_locations()
    return plan_view([sys.prefix, sys.base_prefix, sys.exec_prefix], list(sys.path), project, packages, hidden)

"""Finding plugin modules outside deploykit: installed entry points and ``$DEPLOYKIT_PLUGINS``. Ground floor.

Both registries (export formats in ``deploykit.exporters.base``, backends in ``deploykit.backends.base``) load
their built-in modules first (:func:`builtin_modules`: every plugin module in their folder), then call
:func:`load_external` with their entry-point group. A module named in
``$DEPLOYKIT_PLUGINS`` (comma-separated, importable from ``sys.path``) may register formats and backends alike.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from functools import cache
from importlib import metadata

from .errors import DeploykitError

PLUGINS_ENV = "DEPLOYKIT_PLUGINS"


@cache
def _entry_points():
    """Every installed entry point, read once per process (reading them scans each installed package)."""
    return metadata.entry_points()


def load_external(group: str) -> None:
    for ep in _entry_points().select(group=group):
        try:
            ep.load()
        except Exception as e:  # a broken third-party plugin is named, not a traceback
            raise DeploykitError(f"cannot load plugin {ep.name!r} ({ep.value}) of {group}: {e}") from None
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise DeploykitError(f"cannot import plugin {module!r} named in ${PLUGINS_ENV}: {e}") from None


def builtin_modules(folders: list[str], infrastructure: tuple[str, ...]) -> list[str]:
    """Plugin modules in a registry's folder: every module but the infrastructure and ``_private`` helpers
    (and, for formats, ``<format>_<job>.py`` helpers: any name with an underscore)."""
    return sorted(
        m.name
        for m in pkgutil.iter_modules(folders)
        if not m.ispkg and "_" not in m.name and m.name not in infrastructure
    )

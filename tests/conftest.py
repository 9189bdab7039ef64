import os
import pathlib
import sys

import pytest

# test-support modules (synthetic_weights) live beside the tests
sys.path.insert(0, str(pathlib.Path(__file__).parent))


@pytest.fixture(scope="session", autouse=True)
def _no_user_artifact_cache(tmp_path_factory):
    """Never the user's artifact cache (exporters/cache.py), not even for module-scoped fixtures that export
    before a test's own cache is set; subprocesses inherit it."""
    os.environ["DEPLOYKIT_ARTIFACT_CACHE"] = str(tmp_path_factory.mktemp("session-artifact-cache"))


@pytest.fixture(autouse=True)
def _own_artifact_cache(tmp_path_factory, monkeypatch):
    """Each test its own artifact cache: a file another test cached must not stand in for an export a test makes
    (or breaks on purpose)."""
    monkeypatch.setenv("DEPLOYKIT_ARTIFACT_CACHE", str(tmp_path_factory.mktemp("artifact-cache")))

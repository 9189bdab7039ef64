"""The CLI's zoo commands and usage errors: in-process where the output and exit status are what is tested, a real
subprocess of the installed console script for the usage errors (click's own path, as a user meets it)."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import REQUIRED, cli, invoke

run = invoke


def test_models_json_lists_the_zoo(tmp_path):
    env = {**os.environ, "DEPLOYKIT_CACHE": str(tmp_path)}
    r = run("models", "--json", env=env)  # cold: counts every model
    assert r.returncode == 0, r.stderr
    assert run("models", "--json", env=env).stdout == r.stdout  # warm: from the cache, same answer
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    for names in REQUIRED.values():
        assert names <= set(rows)
    s = rows["mnv4_conv_s"]
    assert (s["family"], s["resolution"], s["top1"]) == ("MobileNetV4", 224, 73.8)
    assert abs(s["params_m"] - 3.77) < 0.01 and abs(s["macs_m"] - 186.0) < 0.5


def test_models_table():
    r = run("models", "--family", "RepViT")
    assert r.returncode == 0 and "repvit_m2_3" in r.stdout and "mnv4" not in r.stdout


def test_info_tables_and_json():
    r = run("info", "mobilenetv4_conv_small", "-r", "160")
    assert r.returncode == 0, r.stderr
    assert "mnv4_conv_s" in r.stdout and "per stage" in r.stdout and "per layer" in r.stdout and "total" in r.stdout
    j = json.loads(run("info", "mnv4_conv_s", "--json").stdout)
    assert j["resolution"] == 224 and j["macs"] == sum(x["macs"] for x in j["layers"])


@pytest.mark.parametrize(
    "args,needle",
    [
        (("info", "mnv4_conv_z"), "did you mean mnv4_conv_s"),
        (("info", "mobilevit_xs", "--resolution", "100"), "multiple of 64"),
        (("info", "mnv4_conv_s", "--resolution", "abc"), "valid integer"),
        (("info",), "Missing argument"),
        (("frobnicate",), "No such command"),
        (("models", "--family", "nope"), "no models in family"),
    ],
)
def test_user_errors_exit_2_with_one_line(args, needle):
    r = cli(*args)
    assert r.returncode == 2
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr

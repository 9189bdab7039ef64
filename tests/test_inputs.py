"""Every input gets a one-line answer, never a traceback, and is never altered on the way (issue: user text was
read as Rich markup or emoji codes; profiles were trusted; a huge resolution allocated 120 GB)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXE, one_line

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=None):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_a_huge_resolution_is_refused_before_allocating():
    assert "at most 2048" in one_line(run("info", "mnv4_conv_s", "-r", "100000"))


HUGE = "99999999999999999999"  # bench --runs HUGE ran silently for as long as it was let


@pytest.mark.parametrize(
    "args, needle",
    [
        (["bench", "--runs", HUGE], f"--runs {HUGE}: give at least 1 and at most"),
        (["bench", "--repetitions", HUGE], "--repetitions"),
        (["bench", "--warmup", HUGE], "--warmup"),
        (["bench", "--strict", HUGE], "--strict"),
        (["bench", "--warmup", "-1"], "--warmup -1"),
        (["bench", "--budget", "1e400"], "--budget inf"),
        (["bench", "--budget", "nan"], "--budget nan"),
        (["bench", "--timeout", "0"], "--timeout 0: give above 0"),
        (["bench", "--timeout", "1e12"], "--timeout 1e+12"),
        (["bench", "--cooldown", "1e12"], "--cooldown"),
        (["sweep", "--models", "mnv1_025", "--runs", "1" * 400], "--runs 11111111111111111111…"),
        (["sweep", "--models", "mnv1_025", "--executor", "ray", "--grace", "inf"], "--grace inf"),
        (["export", "mnv1_025", "--verify-samples", HUGE], "--verify-samples"),
        (["export", "mnv1_025", "--samples", HUGE], "--samples"),
    ],
)  # fmt: skip
def test_every_count_has_a_ceiling_and_a_huge_one_is_refused_in_one_line(tmp_path, args, needle):
    if args[0] == "bench":
        args = [*args, "--device", "host", "--model", "mnv1_025", "--db", str(tmp_path / "r.db")]
    assert needle in one_line(run(*args, cwd=tmp_path))
    assert list(tmp_path.iterdir()) == []  # refused before any work


@pytest.mark.parametrize("name", ["[bold]foo", "a[/x]b", "mod:factory:"])
def test_user_text_is_printed_as_typed(name):
    line = one_line(run("info", name))
    assert repr(name) in line


def test_a_user_model_name_with_an_emoji_code_is_not_rewritten(tmp_path):
    line = one_line(run("export", "mod:factory:", "--input-shape", "1,3,64,64", "--out", str(tmp_path)))
    assert "mod:factory:" in line


@pytest.mark.parametrize(
    "field, needle",
    [
        ('peak_macs_per_s = -2e10\nmem_bw_bytes_per_s = 1e9', "peak_macs_per_s = -20000000000.0 is outside"),
        ('peak_macs_per_s = 2e10\nmem_bw_bytes_per_s = 1e9\n[targets.roofline]\nefficiency = "fast"', "roofline.efficiency has the wrong type"),
        ('peak_macs_per_s = 2e10\nmem_bw_bytes_per_s = 1e9\n[targets.roofline]\nefficiency = { dwconv = 3.0 }', "roofline.efficiency = {'dwconv': 3.0}"),
        ('peak_macs_per_s = 2e10\nmem_bw_bytes_per_s = 1e9\n[targets.roofline]\nturbo = true', "roofline.turbo is not a roofline field"),
        ("threads = 1.5", "threads has the wrong type"),
    ],
)  # fmt: skip
def test_bad_profiles_name_the_file_and_the_key(tmp_path, field, needle):
    (tmp_path / "bad.toml").write_text(
        f'name = "bad"\ndisplay = "x"\nreach = "adb"\n[[targets]]\nbackend = "litert-gpu"\nprecision = "fp16"\n{field}\n'
    )
    line = one_line(run("estimate", "mnv1_025", "--device", "bad", "--profiles", str(tmp_path), "--no-store"))
    assert "bad.toml" in line and needle in line


def test_results_validate_choices_and_resolve_aliases(tmp_path):
    db = tmp_path / "r.db"
    r = run("estimate", "mnv4_conv_s", "--device", "pixel8", "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert "is not one of measured, estimated, published" in one_line(
        run("results", "--db", str(db), "--provenance", "bogus")
    )
    rows = json.loads(run("results", "--db", str(db), "--model", "mobilenetv4_conv_small", "--json").stdout)
    assert rows and {x["model"] for x in rows} == {"mnv4_conv_s"}  # the timm name finds the zoo name's rows


def test_report_out_a_folder_is_one_line_and_leaves_nothing(tmp_path):
    db = tmp_path / "r.db"
    assert run("estimate", "mnv1_025", "--device", "pixel8", "--db", str(db)).returncode == 0
    folder = tmp_path / "site"
    folder.mkdir()
    r = run("report", "--db", str(db), "--out", str(folder))
    assert r.returncode == 2 and "that is a folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.db", "r.db-shm", "r.db-wal", "site"] or not any(
        ".partial" in p.name for p in tmp_path.rglob("*")
    )
    assert not any(".partial" in p.name for p in tmp_path.rglob("*"))


def test_report_out_a_pipe_is_refused_and_a_link_is_written_through(tmp_path):
    """Reports are written to a new file renamed over --out: a device or a pipe there was replaced by a regular file
    (/dev/full became an HTML page), and a link by a file while what it pointed to stayed old."""
    db = tmp_path / "r.db"
    assert run("estimate", "mnv1_025", "--device", "pixel8", "--db", str(db)).returncode == 0
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    assert "not a regular file" in one_line(run("report", "--db", str(db), "--out", str(pipe)))
    assert pipe.is_fifo()
    target, link = tmp_path / "target.html", tmp_path / "link.html"
    target.write_text("old")
    link.symlink_to(target)
    assert run("report", "--db", str(db), "--out", str(link)).returncode == 0
    assert link.is_symlink() and "<html" in target.read_text()


def test_a_fit_on_as_few_rows_as_parameters_says_so():
    """Two rows, two free parameters: the fit passes through both, and says its error means nothing. (Shipped
    targets now fit on their whole corpus, e.g. pixel8's Edge TPU on 11 rows, so this is built from two.)"""
    from deploykit import estimator as E
    from deploykit.devices import get_profile

    tpu = next(t for t in get_profile("pixel8").targets if t.name == "edgetpu")
    _, two = E.calibrate(tpu, [("mnv4_conv_s", 224, 0.7, "paper"), ("mnv4_conv_l", 384, 2.4, "paper")])
    assert len(two.free) == 2 and "reproduces them exactly" in two.caveat
    _, more = E.calibrate(tpu, [(m, r, ms, "paper") for m, r, ms in (("mnv4_conv_s", 224, 0.7), ("mnv4_conv_l", 384, 2.4),
                                                                      ("mnv2_100", 224, 0.7), ("mnv1_100", 224, 0.8))])  # fmt: skip
    assert more.caveat is None or len(more.free) >= 4


def test_an_export_prints_deploykits_lines_only(tmp_path):
    r = run("export", "mnv1_025", "-r", "64", "--to", "tflite", "--precision", "int8", "--samples", "4",
            "--verify-samples", "2", "--out", str(tmp_path))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and r.stdout.startswith("wrote ")  # no torch/absl/LiteRT log lines, no blank line


def test_the_documented_python_example_runs(tmp_path):
    """docs/cli.md's Python block (the README's, before the command reference moved), with a timm-keyed checkpoint
    made here for the file it names."""
    import re

    from synthetic_weights import timm_state_dict

    page = (ROOT / "docs" / "cli.md").read_text()
    block = re.search(r"```python\n(.*?)```", page, re.S).group(1)
    from safetensors.torch import save_file

    save_file(timm_state_dict("mnv4_hybrid_m"), str(tmp_path / "mobilenetv4_hybrid_medium.safetensors"))
    out = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "1271183360" in out.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["estimate", "--fit", "--published", "--device", "pixel8", "--write", "/proc/nope"], "cannot create files in"),
        (["estimate", "--fit", "--published", "--device", "pixel8", "--write", "{file}"], "that is a file"),
        (["report", "--out", ""], "--out is empty"),
        (["report", "--out", "{dir}"], "that is a folder"),
        (["sweep", "--models", "mnv1_025", "--devices", "pixel8", "--report", "{file}/x.html"], "is a file, so nothing"),
        (["estimate", "mnv1_025", "--validate", "--device", "iphone13"], "--validate takes no model names"),
        (["estimate", "--validate", "--fit", "--device", "iphone13"], "--validate and --fit cannot be combined"),
        (["estimate", "mnv1_025", "--device", "pixel8", "--write", "{dir}"], "--write goes with --fit"),
        (["estimate", "mnv1_025", "--device", "pixel8", "--target", ""], "--target is empty"),
        (["results", "--json", "--csv"], "--json and --csv cannot be combined"),
        (["bench", "--device", "host", "--model", "mnv1_025", "--budget", "-1"], "--budget -1"),
    ],
)  # fmt: skip
def test_bad_output_paths_and_options_that_do_not_go_together_are_refused_before_any_work(tmp_path, args, needle):
    """A long run must not end on a path it cannot write (the sweep's report was a traceback after the sweep), and
    an option that another mode owns is refused rather than silently ignored."""
    (tmp_path / "f.txt").write_text("x")
    args = [a.format(file=tmp_path / "f.txt", dir=tmp_path) for a in args]
    db = tmp_path / "r.db"
    line = one_line(run(*args, *(["--db", str(db)] if args[0] in ("sweep", "estimate") else []), cwd=tmp_path))
    assert needle in line
    assert not db.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]  # nothing written


def test_a_file_whose_graph_has_no_operators_is_not_estimated_at_zero_ms(tmp_path):
    """Protobuf reads a few stray bytes as an empty ONNX model: an estimate of nothing (0 ms) was stored."""
    junk = tmp_path / "model.onnx"
    junk.write_text("x\n")
    db = tmp_path / "r.db"
    line = one_line(run("estimate", str(junk), "--device", "pixel8", "--db", str(db)), code=1)
    assert "model.onnx" in line and "no operators" in line and not db.exists()


def test_results_for_a_device_no_profile_names_is_an_error_not_an_empty_list(tmp_path):
    db = tmp_path / "r.db"
    assert run("estimate", "mnv1_025", "-r", "64", "--device", "pixel8", "--db", str(db)).returncode == 0
    assert "no profile has that name" in one_line(run("results", "--device", "pixle8", "--db", str(db)))
    ok = run("results", "--device", "pixel6", "--db", str(db), "--json")  # a real device with no rows: empty list
    assert ok.returncode == 0 and json.loads(ok.stdout) == []
    # the same for a model: a misspelt name is an error naming what is stored, a zoo model with no rows is empty
    assert "models in" in one_line(run("results", "--model", "mnv1_25", "--db", str(db)))
    ok = run("results", "--model", "mnv4_conv_s", "--db", str(db), "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout) == []


def test_a_sweep_runs_a_name_given_twice_once(tmp_path):
    r = run("sweep", "--models", "mnv1_025,mnv1_025", "--devices", "coral-usb,coral-usb", "--db",
            str(tmp_path / "r.db"), "--plan")  # fmt: skip
    assert r.returncode == 0, r.stderr
    jobs = json.loads(r.stdout)
    assert len(jobs) == len({json.dumps(j, sort_keys=True) for j in jobs}) > 0


def test_terminal_escapes_never_reach_a_message_or_the_store(tmp_path):
    """A converter's or runtime's coloured text (ESC[96m…ESC[0m, OSC hyperlinks) is stored and said as text."""
    from deploykit.errors import DeploykitError, plain_text
    from deploykit.measurement import LatencyStats, Measurement
    from deploykit.store import Store

    coloured = "\x1b[96mcannot\x1b[0m lower \x1b]8;;http://x\x07this\x1b]8;;\x07 op\x07"
    assert plain_text(coloured) == "cannot lower this op"
    e = DeploykitError(coloured, hint="\x1b[1mre-export\x1b[0m")
    assert str(e) == "cannot lower this op (hint: re-export)"
    m = Measurement(
        model="m", resolution=64, format="onnx", precision="fp32", target="host/onnxruntime/fp32", device="host",
        backend="onnxruntime", provenance="measured", status="failed", stats=LatencyStats(1, [1], 1, 1, 1),
        error=coloured, warnings=[coloured],
    )  # fmt: skip
    with Store(tmp_path / "r.db") as store:
        store.add(m)
        [row] = store.query()
    assert row.error == "cannot lower this op" and row.warnings == ["cannot lower this op"]


def test_ctrl_c_during_any_command_is_one_line_and_exit_130():
    """Typer turned a Ctrl-C that no command caught into a silent exit 130 (nothing said); now one line."""
    import signal
    import time

    p = subprocess.Popen([EXE, "estimate", "validate"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # well into the command (a validation refits every target: tens of seconds)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and err == "error: interrupted\n", err


def test_a_zoo_model_takes_its_side_from_input_shape(tmp_path):
    """The CI recipe passes --input-shape for whatever MODEL is; a zoo model exported at its default 224 px instead,
    without a word."""
    r = run("export", "mnv1_025", "--input-shape", "1,3,64,64", "--to", "onnx", "-o", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["artifact"].endswith("mnv1_025-64-onnx-fp32.onnx")
    both = run("export", "mnv1_025", "--input-shape", "1,3,64,64", "-r", "96", "--to", "onnx", "-o", str(tmp_path))
    assert "--input-shape 1,3,64,64 and -r 96 disagree" in one_line(both)


def test_bench_takes_a_resolution_for_zoo_models_and_refuses_it_for_a_file(tmp_path):
    """`bench -r 64` measures the zoo model at that side (there was no way but export -r and --artifact); a file
    runs at the input it was exported with; a side the model cannot take is one line."""
    db = tmp_path / "r.db"
    r = run("bench", "--device", "host", "--model", "mnv1_025", "-r", "64", "--backend", "pytorch", "--runs", "3",
            "--repetitions", "1", "--warmup", "1", "--db", str(db), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert [(m["model"], m["resolution"]) for m in json.loads(r.stdout)] == [("mnv1_025", 64)]
    junk = tmp_path / "m.tflite"
    junk.write_bytes(b"x")
    said = one_line(run("bench", "--device", "host", "--artifact", str(junk), "-r", "64", "--db", str(db)))
    assert "--resolution is for zoo models" in said
    assert "cannot take resolution 97" in one_line(run("bench", "--device", "host", "--model", "mnv1_025", "-r", "97"))

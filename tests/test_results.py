"""The results store and the commands that read it (issue 26): whatever a user puts in it (names with Rich markup,
a binary file to import, the same file twice) never breaks it or them; rows a user can tell apart are shown apart;
a reading command never turns a file into a database."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from deploykit.measurement import LatencyStats, Measurement
from deploykit.store import Store
from tests.conftest import invoke as run
from tests.conftest import one_line

MARKUP = "[red]y[blink]"  # Rich would print it as "y"
CLOSING = "[/bold]"  # Rich raises MarkupError on it


def _row(model: str, target: str = "rpi5/litert-xnnpack/fp32", ms: float = 5.0, **fields) -> Measurement:
    device, backend, precision = target.split("/")
    return Measurement(
        model=model, resolution=fields.pop("resolution", 0), format="onnx", precision=precision, target=target,
        device=device, backend=backend, median_ms=ms, **fields,
    )  # fmt: skip


def _tiny_onnx(path: Path) -> Path:
    """A one-conv ONNX graph deploykit can read (no manifest: its model is the file's stem)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "W"], ["y"], pads=[1, 1, 1, 1])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 32, 32])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


# ---------- 1: user text is text wherever it is printed ----------


def test_markup_in_stored_names_prints_verbatim_everywhere(tmp_path):
    db = tmp_path / "r.db"
    with Store(db) as s:
        s.add(_row(CLOSING, warnings=[f"{CLOSING} warned"], env={"note": CLOSING}))
        s.add(_row(MARKUP, target=f"{MARKUP}dev/litert-xnnpack/fp32", artifact=f"{MARKUP}.onnx"))
    table = run("results", "--db", str(db))
    assert table.returncode == 0 and "Traceback" not in table.stderr, table.stderr
    assert CLOSING in table.stdout and f"{MARKUP}dev/litert-xnnpack/fp32" in table.stdout
    rows = json.loads(run("results", "--db", str(db), "--json").stdout)
    assert [r["model"] for r in rows] == [CLOSING, MARKUP] and rows[0]["env"]["note"] == CLOSING
    listed = list(csv.DictReader(io.StringIO(run("results", "--db", str(db), "--csv").stdout)))
    assert [r["model"] for r in listed] == [CLOSING, MARKUP] and listed[0]["warnings"] == f"{CLOSING} warned"
    # the delete listing is the same table
    shown = run("results", "delete", "--db", str(db), "--model", CLOSING, "--yes")
    assert shown.returncode == 0 and CLOSING in shown.stdout, shown.stderr


def test_markup_in_an_imported_name_and_note(tmp_path):
    db, f = tmp_path / "r.db", tmp_path / "m.csv"
    f.write_text(f"device,model,target,latency_ms,note\nrpi5,{CLOSING},rpi5/litert-xnnpack/fp32,3,{MARKUP}\n")
    r = run("results", "import", str(f), "--db", str(db))
    assert r.returncode == 0 and CLOSING in r.stdout, r.stderr
    with Store(db) as s:
        assert s.query()[0].env["note"] == MARKUP


def test_bench_and_sweep_progress_and_warnings_print_markup_verbatim():
    """The progress bar's description (a file's or model's name) and the warnings said with a row."""
    from deploykit.cli import render as cli

    with cli.bar(False) as progress, cli.err.capture() as drawn:
        listener = cli.BarListener(progress)
        listener.planned(2, title=f"{MARKUP}.onnx")
        cli.err.print(progress.get_renderable())  # the frame a terminal would see
        listener.started(f"{CLOSING} on rpi5/litert-xnnpack/fp32")
        cli.err.print(progress.get_renderable())
        listener.warn(f"{CLOSING} warned")
    assert f"{MARKUP}.onnx" in drawn.get() and f"{CLOSING} on rpi5/litert-xnnpack/fp32" in drawn.get()
    assert f"warning: {CLOSING} warned" in drawn.get()
    with cli.err.capture() as said:
        noisy = _row(CLOSING, quality="noisy", details={"quality_reasons": [MARKUP]}, warnings=[CLOSING])
        cli.say_quality([noisy])
    assert f"warning: {CLOSING} on rpi5/litert-xnnpack/fp32 was measured on a busy machine: {MARKUP}" in said.get()


def test_estimate_table_prints_a_file_name_with_markup(tmp_path):
    onnx_file = _tiny_onnx(tmp_path / f"{MARKUP}.onnx")
    r = run("estimate", str(onnx_file), "--device", "rpi5", "--no-store")
    assert r.returncode == 0, r.stderr
    assert f"{MARKUP}@0" in r.stdout


# ---------- 2 and 4: every unreadable import is one line, exit 2, and nothing is stored ----------


HEADER = "device,model,compute_unit,precision,latency_ms,resolution\n"


@pytest.mark.parametrize(
    "name, content, needle",
    [
        ("bin.csv", bytes(range(256)) * 4, "is not a text file"),
        ("long.csv", b'device,model,latency_ms\n"' + b"a" * 200_000 + b'",x,1\n', "is not a readable CSV file"),
        ("empty.csv", b"", "holds no rows"),
        ("cols.csv", b"name,ms\nmnv1_100,3\n", "missing device, model, latency_ms"),
        ("word.csv", (HEADER + "rpi5,mnv1_100,litert-xnnpack,fp32,fast,\n").encode(), "not 'fast'"),
        ("nan.csv", (HEADER + "rpi5,mnv1_100,litert-xnnpack,fp32,nan,\n").encode(), "not 'nan'"),
        ("inf.csv", (HEADER + "rpi5,mnv1_100,litert-xnnpack,fp32,inf,\n").encode(), "under one hour"),
        ("huge.csv", (HEADER + "rpi5,mnv1_100,litert-xnnpack,fp32,1e300,\n").encode(), "not '1e300'"),
        ("res.csv", (HEADER + "rpi5,mnv1_100,litert-xnnpack,fp32,3,big\n").encode(), "resolution must be"),
        ("inf.json", b'[{"device": "rpi5", "model": "mnv1_100", "target": "litert-xnnpack", "precision": "fp32",'
         b' "latency_ms": Infinity}]', "under one hour"),
        ("obj.json", b'[{"device": "rpi5", "model": {"a": 1}, "target": "litert-xnnpack", "latency_ms": 3}]',
         "model must be text"),
        # the precision chooses among a backend's targets; without one, the candidates are named in full
        ("amb.csv", b"device,model,compute_unit,latency_ms\nrpi5,mnv1_100,litert-xnnpack,3\n",
         "2 'litert-xnnpack' targets: rpi5/litert-xnnpack/int8, rpi5/litert-xnnpack/fp32"),
        ("prec.csv", (HEADER + "rpi5,mnv1_100,litert-xnnpack,fp16,3,\n").encode(),
         "no 'litert-xnnpack' target of precision 'fp16'"),
    ],
)  # fmt: skip
def test_an_unreadable_import_is_one_line_and_stores_nothing(tmp_path, name, content, needle):
    db, f = tmp_path / "r.db", tmp_path / name
    f.write_bytes(content)
    line = one_line(run("results", "import", str(f), "--db", str(db)))
    assert needle in line, line
    if db.exists():
        with Store(db) as s:
            assert s.count() == 0


def test_the_precision_column_chooses_the_target(tmp_path):
    db, f = tmp_path / "r.db", tmp_path / "p.csv"
    f.write_text(
        "device,model,target,precision,latency_ms\n"
        "rpi5,mnv1_100,litert-xnnpack,int8,4\n"
        "rpi5,mnv1_100,litert-xnnpack,fp32,9\n"
        "rpi5,mnv2_100,rpi5/litert-xnnpack/int8,,5\n"  # a full target id needs no precision
    )
    r = run("results", "import", str(f), "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    got = [(m["target"], m["precision"], m["median_ms"]) for m in json.loads(r.stdout)]
    assert got == [
        ("rpi5/litert-xnnpack/int8", "int8", 4.0),
        ("rpi5/litert-xnnpack/fp32", "fp32", 9.0),
        ("rpi5/litert-xnnpack/int8", "int8", 5.0),
    ]


# ---------- 3: importing twice counts once; rows a user regrets can be deleted ----------


def test_importing_a_file_twice_stores_its_rows_once_and_the_fit_counts_them_once(tmp_path):
    db, f = tmp_path / "r.db", tmp_path / "x.csv"
    f.write_text(
        "device,model,target,precision,latency_ms\n"
        "rpi5,mnv1_100,litert-xnnpack,int8,4\n"
        "rpi5,mnv2_100,litert-xnnpack,int8,6\n"
        "rpi5,mnv2_100,litert-xnnpack,int8,6\n"  # the same row twice in one file is one measurement
    )
    first = run("results", "import", str(f), "--db", str(db))
    assert first.returncode == 0 and "1 row(s) already stored" in first.stderr, first.stderr
    again = run("results", "import", str(f), "--db", str(db), "--json")
    assert again.returncode == 0 and json.loads(again.stdout) == [], again.stderr
    assert "3 row(s) already stored" in again.stderr
    with Store(db) as s:
        assert s.count() == 2
    fit = run(
        "estimate", "--fit", "--device", "rpi5", "--target", "rpi5/litert-xnnpack/int8", "--db", str(db), "--json"
    )
    assert fit.returncode == 0, fit.stderr
    assert [r["rows"] for r in json.loads(fit.stdout)["fits"]] == [2]


def test_results_delete_shows_asks_and_deletes_only_what_the_filters_select(tmp_path):
    db = tmp_path / "r.db"
    with Store(db) as s:
        s.add(_row("mnv1_100", ms=1.0))
        s.add(_row("mnv2_100", ms=2.0))
        s.add(_row("mnv2_100", ms=3.0, provenance="estimated"))
    assert "or --all for every row" in one_line(run("results", "delete", "--db", str(db)))
    assert "give it alone" in one_line(run("results", "delete", "--db", str(db), "--all", "--model", "mnv1_100"))
    asked = run("results", "delete", "--db", str(db), "--model", "mnv2_100")  # stdin is no terminal here
    assert asked.returncode == 2 and "add --yes" in asked.stderr and "2 measurement(s) to delete" in asked.stdout
    assert "add --yes" in one_line(run("results", "delete", "--db", str(db), "--model", "mnv2_100", "--json"))
    assert "nothing deleted" in one_line(run("results", "delete", "--db", str(db), "--model", "mnv4_conv_l"))
    assert "no zoo model has that name" in one_line(run("results", "delete", "--db", str(db), "--model", "nosuch"))
    with Store(db) as s:
        assert s.count() == 3
    r = run("results", "delete", "--db", str(db), "--model", "mnv2_100", "--provenance", "measured", "--yes", "--json")
    assert r.returncode == 0 and [m["median_ms"] for m in json.loads(r.stdout)] == [2.0], r.stderr
    with Store(db) as s:
        assert sorted(m.median_ms for m in s.query()) == [1.0, 3.0]
    r = run("results", "delete", "--db", str(db), "--all", "--yes")
    assert r.returncode == 0 and "deleted 2 measurement(s)" in r.stdout
    with Store(db) as s:
        assert s.count() == 0


# ---------- 5: a fit uses the rows it can analyse, and says which it skipped ----------


def test_fit_skips_rows_of_a_model_it_cannot_analyse_and_reads_a_files_graph(tmp_path):
    db = tmp_path / "r.db"
    onnx_file = _tiny_onnx(tmp_path / "mine.onnx")
    with Store(db) as s:
        s.add(_row("mnv1_100", ms=30.0, resolution=224))
        s.add(_row("mynet.factory", ms=7.0))  # imported by name: no graph deploykit can read
        s.add(_row("mine", ms=0.05, artifact=str(onnx_file)))  # a file of the user's, still there
    r = run("estimate", "--fit", "--device", "rpi5", "--target", "rpi5/litert-xnnpack/fp32", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    assert [f["rows"] for f in json.loads(r.stdout)["fits"]] == [2]
    assert "rows of mynet.factory skipped" in r.stderr


# ---------- 6 and 7: input shapes tell rows apart; --csv carries every column ----------


def test_one_file_at_two_batch_sizes_is_two_rows_told_apart(tmp_path):
    db = tmp_path / "r.db"
    with Store(db) as s:
        for batch in (1, 8):
            s.add(_row("x.onnx", env={"input_shapes": {"x": [batch, 3, 96, 96]}}, quality="clean"))
    table = run("results", "--db", str(db)).stdout
    assert "x.onnx [x=1,3,96,96]" in table and "x.onnx [x=8,3,96,96]" in table
    rows = list(csv.DictReader(io.StringIO(run("results", "--db", str(db), "--csv").stdout)))
    assert [r["input_shapes"] for r in rows] == ["x=1,3,96,96", "x=8,3,96,96"]
    assert [r["quality"] for r in rows] == ["clean", "clean"]
    as_json = json.loads(run("results", "--db", str(db), "--json").stdout)
    assert [m["env"]["input_shapes"]["x"][0] for m in as_json] == [1, 8]


def test_csv_carries_every_column_of_the_table_and_the_rows_identity(tmp_path):
    db = tmp_path / "r.db"
    with Store(db) as s:
        s.add(_row("mnv1_100", stats=LatencyStats.from_samples([[1.0, 2.0, 3.0]]), quality="noisy"))
    header = run("results", "--db", str(db), "--csv").stdout.splitlines()[0].split(",")
    table = ["model", "target", "provenance", "median_ms", "p50", "p90", "min", "stdev", "n", "status", "quality"]
    identity = ["resolution", "format", "precision", "device", "backend", "input_shapes"]
    assert not [c for c in table + identity if c not in header], header


def test_the_cost_of_a_row_is_listed_where_rows_have_it(tmp_path):
    """Load, first inference, p99, memory, size and throughput: table columns only where some row has them, CSV
    columns after the older ones, a flat "cost" in --json (rows without any keep their old JSON)."""
    db = tmp_path / "r.db"
    stats = LatencyStats.from_samples([[1.0 + i / 100 for i in range(100)]])
    stats.init_ms, stats.first_ms = 41.5, 3.25
    env = {"memory": {"bytes": 12 * 2**20, "what": "peak RSS delta"}, "artifact_bytes": 5 * 2**20, "threads_used": 2}
    with Store(db) as s:
        s.add(_row("old", stats=LatencyStats.from_samples([[1.0, 2.0]])))
        s.add(_row("new", stats=stats, env=env))
        s.add(_row("new", stats=stats, env={**env, "batch": 8, "input_shapes": {"x": [8, 3, 224, 224]}},
                   details={"throughput_ips": 123.4}))  # fmt: skip
    table = run("results", "--db", str(db)).stdout
    for col in ("load ms", "first ms", "p99", "memory MiB", "size MiB", "img/s"):
        assert col in table, table
    assert "41.5" in table and "12.0" in table and "5.0" in table and "123.4" in table
    only_old = run("results", "--db", str(db), "--model", "old").stdout
    assert "load ms" not in only_old and "memory MiB" not in only_old
    rows = list(csv.DictReader(io.StringIO(run("results", "--db", str(db), "--csv").stdout)))
    header = list(rows[0])
    assert header[: header.index("error") + 1][-3:] == ["quality", "warnings", "error"]  # the old columns first
    assert rows[0]["load_ms"] == "" and rows[1]["load_ms"] == "41.5" and rows[1]["memory_bytes"] == str(12 * 2**20)
    assert rows[1]["size_bytes"] == str(5 * 2**20) and rows[1]["threads"] == "2" and float(rows[1]["p99"]) > 1.9
    assert (rows[2]["batch"], rows[2]["throughput_ips"]) == ("8", "123.4")
    as_json = json.loads(run("results", "--db", str(db), "--json").stdout)
    assert "cost" not in as_json[0] and as_json[1]["cost"]["first_ms"] == 3.25
    assert as_json[2]["cost"]["throughput_ips"] == 123.4


def test_rows_at_two_thread_counts_are_told_apart(tmp_path):
    db = tmp_path / "r.db"
    with Store(db) as s:
        for n in (1, 2):
            s.add(_row("mnv1_100", env={"threads": n, "threads_used": n, "threads_requested": n}))
    table = run("results", "--db", str(db)).stdout
    assert "mnv1_100 [threads=1]" in table and "mnv1_100 [threads=2]" in table


# ---------- 8: a reading command never creates or converts a file ----------


def _foreign_sqlite(path: Path) -> Path:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("kind", ["empty", "png", "sqlite"])
@pytest.mark.parametrize(
    "command",
    [
        ["results"],
        ["results", "--csv"],
        ["results", "delete", "--all", "--yes"],
        ["report", "--out", "{tmp}/r.html"],
        ["estimate", "--fit", "--device", "rpi5"],
    ],
)
def test_a_reading_command_leaves_a_file_that_is_no_database_untouched(tmp_path, kind, command):
    db = tmp_path / "not.db"
    if kind == "sqlite":
        _foreign_sqlite(db)
    else:
        db.write_bytes(b"" if kind == "empty" else b"\x89PNG\r\n\x1a\n" + bytes(200))
    os.utime(db, (1_000_000_000, 1_000_000_000))
    before = db.read_bytes()
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    line = one_line(run(*args, "--db", str(db)), code=1)
    assert "is not a deploykit database" in line
    assert db.read_bytes() == before and db.stat().st_mtime == 1_000_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not.db"]  # no -wal/-shm, no report


def test_a_reading_command_on_an_absent_path_creates_nothing(tmp_path):
    db = tmp_path / "none.db"
    for args in (["results"], ["report", "--out", str(tmp_path / "r.html")], ["results", "delete", "--all", "--yes"]):
        assert "no results database at" in one_line(run(*args, "--db", str(db)))
    assert not list(tmp_path.iterdir())


def test_an_older_deploykit_database_is_still_read(tmp_path):
    import shutil

    db = tmp_path / "v2.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "results-v2.db", db)
    r = run("results", "--db", str(db), "--json")
    assert r.returncode == 0 and json.loads(r.stdout), r.stderr

"""Reports, sweeps and accuracy evaluation: Pareto fronts, the HTML file in a real browser, resumable sweeps."""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from deploykit.measurement import LatencyStats, Measurement
from deploykit.reports.pareto import interval_fronts, pareto_front
from deploykit.store import Store
from tests.conftest import invoke

EVIL = "<script>alert('x')</script>net"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _run(*args):
    return invoke(*args)  # in-process: the output and exit status are what is tested


def _brute_front(points: list[tuple[float, float]]) -> set[int]:
    """Independent O(n²) definition: i is optimal unless some j is no slower, no less accurate, and better."""
    return {
        i
        for i, (li, ai) in enumerate(points)
        if not any(lj <= li and aj >= ai and (lj < li or aj > ai) for j, (lj, aj) in enumerate(points) if j != i)
    }


def test_pareto_front_matches_the_definition():
    rng = np.random.default_rng(0)
    for _ in range(200):
        pts = [(float(x), float(y)) for x, y in rng.integers(1, 8, size=(int(rng.integers(1, 12)), 2))]
        assert set(pareto_front(pts)) == _brute_front(pts), pts
    assert pareto_front([(1.0, 70.0), (2.0, 75.0), (3.0, 74.0), (0.5, 60.0)]) == [3, 0, 1]


def test_interval_fronts_bracket_the_point_front():
    """With latencies known only within intervals, the surely-optimal points are optimal for every latency in
    the intervals and the possibly-optimal ones for at least one; the front of the midpoints lies between."""
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 10))
        mid = rng.uniform(1, 10, n)
        half = rng.uniform(0, 2, n)
        acc = rng.integers(60, 80, n).astype(float)
        pts = [(float(m - h), float(m + h), float(a)) for m, h, a in zip(mid, half, acc)]
        sure, possible = interval_fronts(pts)
        point = _brute_front([(float(m), float(a)) for m, a in zip(mid, acc)])
        assert set(sure) <= point <= set(possible), pts
        for _ in range(5):  # any draw of latencies within the intervals keeps the sure ones on its front
            draw = [(float(rng.uniform(lo, hi)), a) for lo, hi, a in pts]
            assert set(sure) <= _brute_front(draw) <= set(possible)
    # two models whose intervals overlap, the slower one more accurate: neither is sure to beat the other
    assert interval_fronts([(1.0, 2.0, 70.0), (1.5, 3.0, 70.0)]) == ([], [0, 1])


@pytest.fixture(scope="module")
def report_db(tmp_path_factory):
    """A store with measured host rows, estimated phone rows, published rows, a failed cell and a user model
    whose name is HTML."""
    from deploykit import estimator as E
    from deploykit.devices import get_profile
    from deploykit.sweep import store_published

    d = tmp_path_factory.mktemp("rep")
    db = d / "r.db"
    models = ["mnv4_conv_s", "mnv4_conv_m", "mnv4_hybrid_m", "mnv2_100", "mnv3_large_100", "mnv1_100"]
    store_published(["pixel4", "pixel8"], db)
    with Store(db) as s:
        for device in ("pixel4", "pixel8"):  # the rows an estimate sweep stores, written directly
            for t in E.select_targets(get_profile(device)):
                for name, res, layers in (E.model_layers(m) for m in models):
                    s.add(E.to_measurement(name, res, t, E.estimate_layers(layers, E.roofline_for(t)), layers))
        for m, ms in [("mnv4_conv_s", 3.1), ("mnv2_100", 4.0), ("mnv1_100", 5.5), ("mnv4_conv_m", 9.0)]:
            # the whole cost of each (issue 29): load, first inference, memory over an empty process, file size
            stats = LatencyStats(ms, [ms], 1, ms, ms, p90=ms * 1.1, init_ms=40 + 10 * ms, first_ms=2 * ms)
            env = {
                "memory": {"bytes": int(ms * 3 * 2**20), "what": "peak RSS delta"},
                "artifact_bytes": int(ms * 2**20),
            }
            s.add(
                Measurement(
                    m, 224, "tflite", "int8", "host/litert-xnnpack/int8", "host", "litert-xnnpack", stats=stats, env=env
                ).set_stats(stats)
            )
        for n, ms in ((1, 5.0), (2, 3.0)):  # a thread sweep of one model
            s.add(
                Measurement(
                    "mnv4_conv_s",
                    224,
                    "tflite",
                    "fp32",
                    "host/litert-xnnpack/fp32",
                    "host",
                    "litert-xnnpack",
                    median_ms=ms,
                    env={"threads": n, "threads_used": n, "threads_requested": n},
                )  # fmt: skip
            )
        s.add(
            Measurement(
                "mnv3_large_100",
                224,
                "tflite",
                "int8",
                "host/litert-xnnpack/int8",
                "host",
                "litert-xnnpack",
                status="failed",
                error="delegate crashed <boom>",
            )
        )
        s.add(
            Measurement(
                EVIL, 224, "tflite", "int8", "host/litert-xnnpack/int8", "host", "litert-xnnpack", median_ms=2.0
            )
        )
        s.add_accuracy(
            {
                "model": EVIL,
                "resolution": 224,
                "format": "tflite",
                "precision": "int8",
                "artifact": "x.tflite",
                "dataset": "/data",
                "images": 10,
                "top1": 71.5,
                "top5": 90.0,
                "weights_real": True,
                "weights_source": "file:/data/evil.safetensors",
            }
        )
    return db


def test_report_data_fronts_and_universality(report_db):
    from deploykit.reports.html import collect, row_label

    data = collect(report_db)
    assert {t["id"] for t in data["targets"]} >= {
        "host/litert-xnnpack/int8",
        "pixel4/hexagon/int8",
        "pixel8/edgetpu/int8",
    }
    with Store(report_db) as s:
        rows = s.query()
    for target, by_prov in data["fronts"].items():
        for prov, front in by_prov.items():
            pts = [r for r in rows if r.target == target and r.provenance == prov and r.status == "ok"]
            latest = {row_label(r): r for r in pts}  # a row of bench --threads is its own point
            names = sorted(latest)
            acc = [data["models"][latest[m].model]["top1"] for m in names]
            expect = {names[i] for i in _brute_front([(latest[m].median_ms, a) for m, a in zip(names, acc)])}
            if prov == "estimated":  # optimal only where the intervals allow it: a subset of the point front
                maybe = set(data["possibly_optimal"].get(target, {}).get(prov, []))
                assert set(front) <= expect <= set(front) | maybe, (target, prov)
            else:
                assert set(front) == expect, (target, prov)
    # measured accuracy beats published; the hexagon cannot run the hybrid; published rows stay published
    assert data["models"][EVIL]["accuracy_provenance"] == "measured"
    hybrid = [c for c in data["cells"] if c["model"] == "mnv4_hybrid_m" and c["target"] == "pixel4/hexagon/int8"]
    assert hybrid and hybrid[0]["status"] == "unsupported"
    published = {(c["model"], c["target"]) for c in data["cells"] if c["provenance"] == "published"}
    assert ("mnv4_conv_l", "pixel8/edgetpu/int8") in published
    assert "host/litert-xnnpack/int8" in data["universality"][EVIL]  # fastest there, so on the front


def test_report_data_is_strict_json_even_with_infinite_snr(report_db):
    """An artifact that matches PyTorch exactly has SNR = inf; the page's data must still parse in a browser."""
    from deploykit.reports.html import collect, render

    data = collect(report_db)
    row = {"artifact": "x.onnx", "model": "m", "format": "onnx", "precision": "fp32", "status": "verified"}
    row.update(reference="pytorch-fp32", cosine_min=1.0, snr_db=float("inf"), top1_agreement=1.0)
    data["fidelity"].append({**row, "threshold": 0.9999, "passed": True, "vs_fp32_cosine": None})
    page = render(data)
    blob = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S).group(1)

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    assert json.loads(blob, parse_constant=refuse)["fidelity"][-1]["snr_db"] is None


def test_report_escapes_html_names(report_db, tmp_path):
    out = tmp_path / "r.html"
    r = _run("report", "--db", str(report_db), "--out", str(out))
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page  # the tables show it, escaped
    assert page.count("<script") == 2  # the data block and the drawing code, nothing else


@pytest.mark.browser
@pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (make test installs Debian's chromium when it can)"
)
def test_report_renders_in_headless_chromium(report_db, tmp_path):
    from deploykit.reports.html import collect, write_report

    html = write_report(report_db, tmp_path / "latest.html")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    dom = subprocess.run(
        [
            CHROMIUM,
            *flags,
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    console_errors = [
        line for line in dom.stderr.splitlines() if "CONSOLE" in line and ("ERROR" in line or "Uncaught" in line)
    ]
    assert not console_errors, console_errors
    page = dom.stdout
    assert 'data-rendered="1"' in page, "the drawing script did not finish"
    assert re.search(r'<div id="js-errors"></div>', page), "the page reported a script error"
    data = collect(report_db)
    # every plot drew: one SVG per scatter, with a marker per ok point of known accuracy
    n_targets = len(data["targets"])
    assert page.count('class="scatter"') == n_targets and page.count("<svg") >= n_targets
    ok_points = [c for c in data["cells"] if c["status"] == "ok" and data["models"][c["model"]].get("top1") is not None]
    assert len(re.findall(r'class="point( noisy)?"', page)) == len(ok_points)
    # the points marked Pareto-optimal are exactly the fronts computed from the stored numbers
    pattern = r'<g class="point(?: noisy)?" data-model="([^"]+)" data-target="([^"]+)" data-provenance="(\w+)" data-pareto="1"'
    marked = {tuple(html_lib.unescape(x) for x in hit) for hit in re.findall(pattern, page)}
    expected = {(m, t, prov) for t, by_prov in data["fronts"].items() for prov, front in by_prov.items() for m in front}
    assert marked == expected
    # tables: one latency row and one universality row per model
    for table in ("latency-table", "universality-table"):
        body = page.split(f'id="{table}"')[1].split("</table>")[0]
        assert body.count("<tr data-model=") == len(data["labels"]), table
    shot_dir = Path(os.environ.get("DEPLOYKIT_TEST_ARTIFACTS", tmp_path))
    shot_dir.mkdir(parents=True, exist_ok=True)
    shot = shot_dir / "report.png"
    subprocess.run(
        [CHROMIUM, *flags, "--window-size=1400,2000", f"--screenshot={shot}", html.as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


# Written into a copy of the report after its own script ran: switches the Pareto plots' x-axis to each choice
# as a reader would (the select's change event) and records what each plot then shows.
AXIS_PROBE = """<script>
(function () {
  var select = document.getElementById("pareto-axis"), out = { options: [], axes: {} };
  [].forEach.call(select.options, function (o) { out.options.push(o.value); });
  out.options.forEach(function (value) {
    select.value = value;
    select.dispatchEvent(new Event("change"));
    var div = document.querySelector('.scatter[data-target="host/litert-xnnpack/int8"]');
    var labels = [].map.call(div.querySelectorAll("svg > text"), function (t) { return t.textContent; });
    out.axes[value] = { axis: div.getAttribute("data-axis"), xlabel: labels.filter(function (t) { return / \\(/.test(t); })[0],
      points: div.querySelectorAll("g.point").length,
      front: [].map.call(div.querySelectorAll('g.point[data-pareto="1"]'), function (g) { return g.getAttribute("data-model"); }),
      errors: document.getElementById("js-errors").textContent };
  });
  var pre = document.createElement("pre");
  pre.id = "axis-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_the_pareto_axis_switch_and_the_deployment_card(report_db, tmp_path):
    """The x-axis switch redraws every Pareto plot on load, first inference, p90, memory or file size, with each
    provenance's front from the points that have the figure; the mnv4_conv_s card lists every device's latency
    (measured and estimated rows apart), its cold start, memory and size; the thread sweep has its plot."""
    from deploykit.reports.html import write_report

    page = write_report(report_db, tmp_path / "r.html")
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", AXIS_PROBE + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    dom = subprocess.run([CHROMIUM, *flags, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="axis-probe">(.*?)</pre>', dom.stdout, re.S)
    assert found, "the probe did not run: " + dom.stdout[-2000:]
    probe = json.loads(html_lib.unescape(found.group(1)))
    assert probe["options"] == ["median_ms", "p90_ms", "first_ms", "load_ms", "memory_bytes", "size_bytes"]
    axes = probe["axes"]
    assert all(a["axis"] == v and not a["errors"] for v, a in axes.items()), axes
    assert axes["median_ms"]["xlabel"].startswith("latency") and axes["memory_bytes"]["xlabel"].startswith(
        "peak memory"
    )
    assert axes["size_bytes"]["xlabel"].startswith("file size") and axes["load_ms"]["xlabel"].startswith("load")
    # the four rows with a cost and a known top-1 (the failed cell and the user model without one drop out on
    # those axes; on latency the user model's measured accuracy keeps it)
    assert axes["median_ms"]["points"] == 5 and all(axes[k]["points"] == 4 for k in ("load_ms", "memory_bytes"))
    # memory grows with latency here (3 MiB per ms): MobileNetV1/V2 are beaten by conv_s on both axes
    assert sorted(axes["memory_bytes"]["front"]) == ["mnv4_conv_m", "mnv4_conv_s"]
    card = dom.stdout.split('id="card-mnv4_conv_s"')[1].split("</article>")[0]
    rows = re.findall(r'<tr data-target="([^"]+)" data-provenance="(\w+)">(.*?)</tr>', card, re.S)
    provenances = {(t, p) for t, p, _ in rows}
    assert ("host/litert-xnnpack/int8", "measured") in provenances and (
        "pixel8/edgetpu/int8",
        "estimated",
    ) in provenances
    host = next(cells for t, p, cells in rows if t == "host/litert-xnnpack/int8")
    numbers = re.findall(r">([\d.]+)<", host)
    assert numbers[:7] == ["3.100", "3.410", "71.0", "6.200", "77.2", "9.3", "3.1"], numbers  # median…size
    estimated = next(cells for t, p, cells in rows if t == "pixel8/edgetpu/int8")
    assert re.findall(r">([\d.]+)<", estimated)[1:] and "card-fidelity" in card and "card-compat" in card
    assert '<div class="threads-plot" data-target="host/litert-xnnpack/fp32">' in dom.stdout
    assert dom.stdout.count('class="thread-point"') == 2


# Written into a copy of the report after its own script ran: what a reader at 1400 px would see, as numbers.
LAYOUT_PROBE = """<script>
(function () {
  function box(b) { return { l: b.x, r: b.x + b.width, t: b.y, b: b.y + b.height }; }
  function inside(a, f) { return a.l >= f.l - 0.5 && a.r <= f.r + 0.5 && a.t >= f.t - 0.5 && a.b <= f.b + 0.5; }
  var out = { scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
              overlapping: [], labelsOutside: [], unnamed: [], bars: [], emptyColumns: [] };
  document.querySelectorAll(".scatter").forEach(function (div) {
    var svg = div.querySelector("svg"), frameEl = svg.querySelector("rect.frame") || svg.querySelector("rect");
    if (!frameEl) return;
    var frame = box(frameEl.getBBox());
    var labels = [].map.call(svg.querySelectorAll("text.label"), function (t) { return [t.textContent, box(t.getBBox())]; });
    labels.forEach(function (a, i) {
      if (!inside(a[1], frame)) out.labelsOutside.push(a[0]);
      labels.slice(i + 1).forEach(function (b) {
        if (a[1].l < b[1].r && b[1].l < a[1].r && a[1].t < b[1].b && b[1].t < a[1].b) out.overlapping.push([a[0], b[0]]);
      });
    });
    var listed = (div.querySelector(".unlabelled") || {}).textContent || "";
    svg.querySelectorAll('g.point[data-pareto="1"]').forEach(function (g) {
      var name = g.getAttribute("data-model"), named = [].some.call(svg.querySelectorAll("text.label"), function (t) {
        return t.textContent === name && t.getAttribute("fill") === g.firstChild.getAttribute("fill") || t.textContent === name && g.getAttribute("data-provenance") !== "measured";
      });
      if (!named && listed.indexOf(name + " (") < 0) out.unnamed.push(name);
    });
    svg.querySelectorAll(".error-bar").forEach(function (line) {
      var x1 = +line.getAttribute("x1"), x2 = +line.getAttribute("x2"), seen = { l: x1, r: x2 };
      var clipped = line.closest("[clip-path]");
      if (clipped) {
        var rect = box(svg.querySelector(clipped.getAttribute("clip-path").slice(4, -1) + " rect").getBBox());
        seen = { l: Math.max(x1, rect.l), r: Math.min(x2, rect.r) };
      }
      out.bars.push({ drawn: [x1, x2], seen: [seen.l, seen.r], frame: [frame.l, frame.r] });
    });
  });
  document.querySelectorAll("table").forEach(function (table) {
    var rows = [].slice.call(table.rows);
    for (var col = 0; col < rows[0].cells.length; col++) {
      var heading = rows[0].cells[col].textContent.trim();
      var filled = rows.slice(1).some(function (r) { return r.cells[col] && r.cells[col].textContent.trim(); });
      if (!heading || !filled) out.emptyColumns.push(table.id + " column " + (col + 1));
    }
  });
  var roof = document.getElementById("roofline");
  out.roofline = roof && { heading: roof.querySelector("h2").textContent, figures: roof.querySelectorAll("figure").length };
  var pre = document.createElement("pre");
  pre.id = "layout-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def _layout_at_1400px(page: Path, tmp_path: Path) -> dict:
    """The report's layout measured in headless Chromium at a screenshot-sized 1400×900 window."""
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", LAYOUT_PROBE + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars"]
    dom = subprocess.run(
        [CHROMIUM, *flags, "--window-size=1400,900", "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="layout-probe">(.*?)</pre>', dom.stdout, re.S)
    assert found, "the probe did not run: " + dom.stdout[-2000:]
    return json.loads(html_lib.unescape(found.group(1)))


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_report_layout_fits_a_1400px_window(report_db, tmp_path):
    """What a reader sees: nothing wider than the page (a wide table scrolls in its own box), no two point
    labels on top of each other or outside their plot, every Pareto-optimal point named (a label, or listed
    under its plot), interval bars cut at the plot frame, no table column without a heading or content, and a
    roofline section that names its device and has plots (this store has no pixel6 estimates)."""
    from deploykit.reports.html import write_report

    # a long file name without spaces: the Reproduce line that names it must wrap, not widen the page
    layout = _layout_at_1400px(write_report(report_db, tmp_path / ("report_" * 30 + ".html")), tmp_path)
    assert 1300 <= layout["clientWidth"] <= 1400, layout["clientWidth"]  # the window size took effect
    assert layout["scrollWidth"] <= layout["clientWidth"], "the page scrolls sideways"
    assert not layout["overlapping"], layout["overlapping"]
    assert not layout["labelsOutside"], layout["labelsOutside"]
    assert not layout["unnamed"], layout["unnamed"]
    bars = layout["bars"]
    assert any(b["drawn"][0] < b["frame"][0] or b["drawn"][1] > b["frame"][1] for b in bars)  # some run past
    assert all(b["frame"][0] - 0.5 <= b["seen"][0] and b["seen"][1] <= b["frame"][1] + 0.5 for b in bars), bars
    assert not layout["emptyColumns"], layout["emptyColumns"]
    roof = layout["roofline"]
    assert roof is not None and roof["figures"] > 0 and re.search(r"\((pixel4|pixel8)\)", roof["heading"]), roof


def test_roofline_section_is_absent_without_estimates(tmp_path):
    """A store of measured rows only: no roofline heading over nothing."""
    from deploykit.reports.html import collect, render

    db = tmp_path / "m.db"
    with Store(db) as s:
        s.add(
            Measurement(
                "mnv2_100", 224, "tflite", "int8", "host/litert-xnnpack/int8", "host", "litert-xnnpack", median_ms=4.0
            )
        )
    data = collect(db)
    assert data["roofline_device"] is None
    page = render(data)
    assert 'id="roofline"' not in page and 'href="#roofline"' not in page


def test_rows_at_another_input_shape_are_their_own_points(tmp_path):
    """The same file benchmarked at batch 1 and at batch 8: two cells, two table rows, and the batch-8 row
    never stands in for the batch-1 one on a front (it is slower by the batch, not a worse model)."""
    from deploykit.reports.html import collect, render

    db = tmp_path / "b.db"
    cell = ("onnx", "fp32", "host/onnxruntime/fp32", "host", "onnxruntime")
    with Store(db) as s:
        for batch, ms in [(1, 3.0), (8, 20.0)]:
            s.add(Measurement("mnv2_100", 224, *cell, median_ms=ms, env={"input_shapes": {"x": [batch, 3, 224, 224]}}))
        s.add(Measurement("mnv4_conv_m", 256, *cell, median_ms=4.0))  # a zoo bench: no shapes stored, batch 1
    data = collect(db)
    by_label = {c["label"]: c for c in data["cells"]}
    assert set(by_label) == {"mnv2_100", "mnv2_100 [x=8,3,224,224]", "mnv4_conv_m"}
    assert by_label["mnv2_100"]["median_ms"] == 3.0 and by_label["mnv2_100 [x=8,3,224,224]"]["median_ms"] == 20.0
    assert data["fronts"]["host/onnxruntime/fp32"]["measured"] == ["mnv2_100", "mnv4_conv_m"]
    table = render(data).split('id="latency-table"')[1].split("</table>")[0]
    assert 'data-model="mnv2_100 [x=8,3,224,224]"' in table and 'data-model="mnv2_100"' in table


def test_the_reproduce_line_reproduces_the_report(report_db, tmp_path):
    """Every command the report prints parses against the CLI's real options, and running it writes the same
    report again (but for the time it was generated)."""
    import shlex

    import typer

    from deploykit.cli import app
    from deploykit.reports.html import write_report

    out = tmp_path / "my report.html"
    first = write_report(report_db, out).read_text()
    commands = [html_lib.unescape(c) for c in re.findall(r'<code class="reproduce">(.*?)</code>', first)]
    assert commands
    cli = typer.main.get_command(app)
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "deploykit"
        with cli.make_context("deploykit", words[1:], resilient_parsing=False) as ctx:
            sub = cli.get_command(ctx, words[1])
            sub.make_context(words[1], words[2:], parent=ctx)  # raises on an option the CLI does not have
        r = _run(*words[1:])
        assert r.returncode == 0, r.stderr
    undated = lambda page: re.sub(r"Generated [^<]* UTC", "", page.split('<script id="report-data"')[0])  # noqa: E731
    assert undated(out.read_text()) == undated(first)
    with pytest.raises(Exception, match="No such option"):  # the check above can fail: an unknown option is refused
        sub.make_context("report", ["--db", "x", "--no-such-option"], parent=ctx)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["sweep", "--models", "nosuch", "--devices", "pixel7"], "unknown model"),
        (["sweep", "--models", "mnv4_conv_s", "--devices", "nophone"], "unknown device"),
        (["sweep", "--models", "mnv4_conv_s", "--devices", "pixel7", "--formats", "keras"], "unknown format"),
        (["report", "--db", "/nonexistent/r.db"], "no results database"),
        (["eval", "/nonexistent/m.tflite", "--data", "/tmp"], "not a deploykit artifact"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needle):
    r = _run(*args)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_results_database_from_the_previous_version_opens_and_renders(tmp_path):
    """tests/fixtures/results-v2.db was written by deploykit at commit caa3af0 (schema 2): a pixel7 sweep
    (estimates + published rows) and one measured PyTorch bench on the host. It migrates to the current schema,
    reads back as typed Measurements, and renders."""
    db = tmp_path / "old.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "results-v2.db", db)
    from deploykit.reports.html import collect
    from deploykit.store import SCHEMA_VERSION

    with Store(db) as s:
        assert s.schema_version() == SCHEMA_VERSION
        rows = s.query()
    measured = [r for r in rows if r.provenance == "measured"]
    assert len(rows) == 7 and len(measured) == 1
    assert measured[0].stats.median_ms == measured[0].median_ms and measured[0].stats.p90 is not None
    data = collect(db)
    assert data["meta"]["machines"][0]["rows"] == 1 and data["meta"]["machines"][0]["cpu"] != "?"
    r = _run("report", "--db", str(db), "--out", str(tmp_path / "old.html"))
    assert r.returncode == 0, r.stderr


def test_the_report_is_a_function_of_the_store(tmp_path, monkeypatch):
    """After a sweep, move the artifacts away and render 'on another machine' (another host name): the same
    tables and plots, and the header names the machine that measured, not the one rendering."""
    import socket

    from deploykit.reports.html import collect, render

    db, arts = tmp_path / "r.db", tmp_path / "artifacts"
    r = _run(
        "sweep", "--models", "mnv1_025", "--devices", "host,pixel6", "--formats", "onnx,tflite", "--db", str(db),
        "--out", str(arts), "--runs", "20", "--repetitions", "2", "--warmup", "2", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    before = collect(db)
    assert before["fidelity"] and before["compat"] and before["roofline"]["mnv1_025"]["layers"]
    measuring_host = socket.gethostname()
    shutil.move(arts, tmp_path / "moved-away")
    monkeypatch.setattr(socket, "gethostname", lambda: "another-machine")
    after = collect(db)
    page = render(after)
    for data in (before, after):
        data["meta"].pop("created")
    assert after == before
    machines = page.split('<ul id="machines">')[1].split("</ul>")[0]
    assert measuring_host in machines and "another-machine" not in page


def test_noisy_rows_are_marked_and_a_clean_row_is_preferred(tmp_path):
    from deploykit.reports.html import collect, render

    db = tmp_path / "q.db"
    cell = ("tflite", "int8", "host/litert-xnnpack/int8", "host", "litert-xnnpack")
    with Store(db) as s:
        s.add(Measurement("mnv4_conv_s", 224, *cell, median_ms=3.0, quality="clean"))
        s.add(Measurement("mnv4_conv_s", 224, *cell, median_ms=9.0, quality="noisy",
                          details={"quality_reasons": ["other processes used 48% of the 2 CPUs"]}))  # fmt: skip
        s.add(Measurement("mnv2_100", 224, *cell, median_ms=5.0, quality="noisy",
                          details={"quality_reasons": ["repetition means spread 60%"]}))  # fmt: skip
    data = collect(db)
    by = {c["model"]: c for c in data["cells"]}
    assert by["mnv4_conv_s"]["median_ms"] == 3.0 and by["mnv4_conv_s"]["quality"] == "clean"  # clean beats newer noisy
    assert by["mnv2_100"]["quality"] == "noisy" and by["mnv2_100"]["quality_reasons"]
    page = render(data)
    table = page.split('id="latency-table"')[1].split("</table>")[0]
    assert table.count("· noisy") == 1 and "repetition means spread 60%" in table


def test_snapdragon_runtimes_side_by_side_never_mixing_provenance(tmp_path):
    """Per Snapdragon device, one model on LiteRT-QNN, ONNX-QNN and QNN: a row per provenance, the fastest in bold,
    the compute units AI Hub reported under a measured figure; a device with one NPU runtime has no such table."""
    db = tmp_path / "r.db"

    def row(backend, ms, prov="measured", device="galaxy-s24", units=None):
        name = {"litert-qnn": "aihub-litert-npu", "onnxruntime-qnn": "aihub-onnx-npu", "qnn": "aihub-qnn-npu"}[backend]
        return Measurement(
            model="mnv4_conv_m", resolution=224, format="onnx", precision="int8", target=f"{device}/{name}/int8",
            device=device, backend=backend, provenance=prov, median_ms=ms, delegate={"compute_units": units} if units else {},
        )  # fmt: skip

    with Store(db) as s:
        s.add(row("litert-qnn", 0.297, units={"NPU": 80}))
        s.add(row("onnxruntime-qnn", 0.426, units={"NPU": 78, "CPU": 2}))
        s.add(row("qnn", 0.419))
        s.add(row("qnn", 0.5, prov="estimated"))
        s.add(row("litert-qnn", 0.3, device="pixel8"))
    out = tmp_path / "r.html"
    assert _run("report", "--db", str(db), "--out", str(out)).returncode == 0
    page = out.read_text()
    section = page[page.index('<section id="npu-runtimes">') :].split("</section>")[0]
    assert 'id="npu-runtimes-galaxy-s24"' in section and "pixel8" not in section
    measured, estimated = re.findall(r"<tr><th>mnv4_conv_m</th>.*?</tr>", section)
    assert "● measured" in measured and "<b>0.297<br><small>NPU 80</small></b>" in measured
    assert "CPU 2 · NPU 78" in measured and ">0.419</td>" in measured
    assert "△ estimated" in estimated and estimated.count("<td>–</td>") == 2 and "<b>0.500</b>" not in estimated


def test_where_the_time_goes_per_model_and_target_with_a_layer_table(tmp_path):
    """A row carrying a per-layer table as `deploykit profile` stores it (join.py's shape, from the recorded
    profiles of tests/fixtures/op_profiles): time by op kind against the roofline, the slowest layers, the
    layers furthest from it, the fallback (an NPU target's layer on the CPU) marked, unmatched ops listed; a newer
    row of the same cell without a table does not hide it; a store without tables has no such section."""
    import math

    from deploykit.devices import get_profile
    from deploykit.profiling import aihub_detail, ort_trace
    from deploykit.profiling.run import layer_table
    from deploykit.reports.html import collect, render

    fix = Path(__file__).parent / "fixtures" / "op_profiles"
    s24 = {t.id: t for t in get_profile("galaxy-s24").targets}["galaxy-s24/aihub-litert-npu/int8"]
    host = {t.id: t for t in get_profile("host").targets}["host/onnxruntime/fp32"]
    npu_ops = aihub_detail.read_profile((fix / "mnv1_025_aihub_profile.json").read_text(), "NPU")
    npu = layer_table(npu_ops, "mnv1_025", 96, s24)
    for r in npu["rows"]:  # the report judges by where it ran too, not only by the reader's flag
        r["fallback"] = False
    cpu = layer_table(ort_trace.read_trace((fix / "mnv1_025_ort_trace.json").read_text(), skip=1), "mnv1_025", 96, host)
    db = tmp_path / "l.db"
    with Store(db) as s:
        s.add(Measurement.for_target(s24, "mnv1_025", 96, median_ms=0.4, details={"layers_measured": npu}))
        s.add(Measurement.for_target(host, "mnv1_025", 96, median_ms=0.2, details={"layers_measured": cpu}))
        s.add(Measurement.for_target(host, "mnv1_025", 96, median_ms=0.25))  # a later bench: no table
    data = collect(db)
    by = {d["target"]: d for d in data["layers_measured"]}
    assert set(by) == {s24.id, host.id}
    d = by[s24.id]
    rows = npu["rows"]
    assert {k["kind"]: k["layers"] for k in d["kinds"]} == {
        k: sum(r["kind"] == k for r in rows) for k in {r["kind"] for r in rows}
    }
    dw = next(k for k in d["kinds"] if k["kind"] == "dwconv")
    assert dw["measured_ms"] == pytest.approx(sum(r["measured_ms"] for r in rows if r["kind"] == "dwconv"))
    assert dw["predicted_ms"] == pytest.approx(sum(r["predicted_ms"] for r in rows if r["kind"] == "dwconv"))
    slowest = max(rows, key=lambda r: r["measured_ms"])
    assert d["slowest"][0]["layer"] == slowest["layer"] and d["slowest"][0]["intensity"] == slowest["intensity"]
    assert [x["layer"] for x in d["fallbacks"]] == ["head.fc"] and d["fallbacks"][0]["ran_on"] == "CPU"
    floor = 0.01 * max(sum(r["measured_ms"] for r in rows), sum(r["predicted_ms"] for r in rows))
    far = max((r for r in rows if max(r["measured_ms"], r["predicted_ms"]) >= floor),
              key=lambda r: abs(math.log(r["measured_ms"] / r["predicted_ms"])))  # fmt: skip
    assert d["blind_spots"][0]["layer"] == far["layer"]
    assert sorted(o["op_type"] for o in by[host.id]["unmatched_ops"]) == ["ReorderOutput", "ReorderOutput", "Reshape"]
    assert not by[host.id]["fallbacks"] and by[host.id]["processor"] == "cpu" and d["processor"] == "npu"

    page = render(data)
    assert 'href="#layers"' in page
    section = page[page.index('<section id="layers">') :].split("</section>")[0]
    npu_card, cpu_card = (section.split(f'data-target="{t}">')[1].split("</article>")[0] for t in (s24.id, host.id))
    kinds = npu_card.split('id="layers-kinds-')[1].split("</table>")[0]
    assert '<tr data-kind="dwconv"><th>dwconv</th>' in kinds and 'class="bar predicted"' in kinds
    fallbacks = npu_card.split('id="layers-fallbacks-')[1].split("</table>")[0]
    assert '<tr class="fallback">' in fallbacks and "<th>head.fc</th>" in fallbacks and "CPU" in fallbacks
    blind = npu_card.split('id="layers-blind-')[1].split("</table>")[0]
    assert f"<th>{far['layer']}</th>" in blind.split("</tr>")[1]  # the first row under the header
    assert "layers-no-fallback" in cpu_card and "ReorderOutput" in cpu_card.split('class="layers-unmatched"')[1]

    bare = tmp_path / "bare.db"
    with Store(bare) as s:
        s.add(Measurement.for_target(host, "mnv1_025", 96, median_ms=0.25))
    plain = collect(bare)
    assert plain["layers_measured"] == [] and 'id="layers"' not in render(plain)

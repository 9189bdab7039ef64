// Draws the report's plots as SVG from the JSON embedded in the page. No libraries, no network.
(function () {
  "use strict";
  var errors = document.getElementById("js-errors");
  window.addEventListener("error", function (ev) { errors.textContent += "script error: " + ev.message + "\n"; });
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var STYLE = {
    measured: { color: "#1b5e20", dash: "" },
    estimated: { color: "#b26a00", dash: "5,3" },
    published: { color: "#283593", dash: "2,3" }
  };

  function el(name, attrs, parent) {
    var n = document.createElementNS(NS, name);
    for (var k in attrs) n.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(n);
    return n;
  }
  function text(parent, x, y, s, attrs) {
    var t = el("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    t.textContent = s;  // textContent, never innerHTML: names are user data
    return t;
  }
  function marker(g, prov, x, y) {
    var s = STYLE[prov];
    if (prov === "measured") return el("circle", { cx: x, cy: y, r: 4.5, fill: s.color }, g);
    if (prov === "estimated")
      return el("path", { d: "M" + x + "," + (y - 5.5) + " l5,9 l-10,0 z", fill: "white", stroke: s.color, "stroke-width": 1.6 }, g);
    return el("rect", { x: x - 4, y: y - 4, width: 8, height: 8, fill: s.color }, g);
  }
  function frame(div, W, H) {
    var svg = el("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img" });
    div.appendChild(svg);
    return svg;
  }
  function axes(svg, box, xs, ys, xlabel, ylabel, logx) {
    el("rect", { x: box.l, y: box.t, width: box.w, height: box.h, fill: "none", stroke: "#ccd", class: "frame" }, svg);
    var lastLabelX = -Infinity;
    xs.ticks.forEach(function (v) {
      var x = xs.f(v);
      el("line", { x1: x, x2: x, y1: box.t, y2: box.t + box.h, stroke: "#eef" }, svg);
      if (x - lastLabelX < 30) return;  // log ticks crowd at the low end: every gridline, not every number
      lastLabelX = x;
      text(svg, x, box.t + box.h + 14, logx ? String(+v.toPrecision(2)) : String(v), { "text-anchor": "middle" });
    });
    ys.ticks.forEach(function (v) {
      var y = ys.f(v);
      el("line", { x1: box.l, x2: box.l + box.w, y1: y, y2: y, stroke: "#eef" }, svg);
      text(svg, box.l - 5, y + 4, String(+v.toFixed(2)), { "text-anchor": "end" });
    });
    text(svg, box.l + box.w / 2, box.t + box.h + 30, xlabel, { "text-anchor": "middle" });
    text(svg, 12, box.t + box.h / 2, ylabel, { transform: "rotate(-90 12 " + (box.t + box.h / 2) + ")", "text-anchor": "middle" });
  }
  function logScale(lo, hi, a, b) {
    if (lo === hi) { lo = lo / 1.5; hi = hi * 1.5; }
    var L = Math.log(lo), H = Math.log(hi);
    var ticks = [];
    for (var p = Math.floor(Math.log10(lo)); p <= Math.ceil(Math.log10(hi)); p++)
      [1, 2, 5].forEach(function (m) { var v = m * Math.pow(10, p); if (v >= lo && v <= hi) ticks.push(v); });
    if (ticks.length < 2) ticks = [lo, hi];
    return { f: function (v) { return a + (Math.log(v) - L) / (H - L) * (b - a); }, ticks: ticks };
  }
  function linScale(lo, hi, a, b, n) {
    if (lo === hi) { lo -= 1; hi += 1; }
    var raw = (hi - lo) / (n || 5), mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 2.5, 5, 10].map(function (m) { return m * mag; }).filter(function (s) { return s >= raw; })[0];
    var ticks = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) ticks.push(+v.toPrecision(6));
    return { f: function (v) { return a + (v - lo) / (hi - lo) * (b - a); }, ticks: ticks };
  }

  // A group clipped to the plot frame: what is drawn in it (an interval running past the axis range, say) never
  // spills over the axis labels or the next plot.
  var clips = 0;
  function plotArea(svg, box) {
    var id = "plot-clip-" + (++clips);
    var clip = el("clipPath", { id: id }, el("defs", {}, svg));
    el("rect", { x: box.l, y: box.t, width: box.w, height: box.h }, clip);
    return el("g", { "clip-path": "url(#" + id + ")", class: "plot-area" }, svg);
  }

  // Labels that overlap neither each other nor a marker, inside the plot frame: each tries spots around its
  // point, nearest first, then farther out with a leader line; front points choose first, then the possibly
  // optimal ones, then the rest. A label that finds no room is listed under the plot instead, so that no point
  // goes unnamed (its tooltip names it too).
  var GAPS = [7, 18, 32];
  var DIRECTIONS = [[1, -1], [1, 1], [-1, -1], [-1, 1], [1, 0], [-1, 0], [0, -1], [0, 1]];
  function overlaps(a, b) { return a.l < b.r && b.l < a.r && a.t < b.b && b.t < a.b; }
  function placeLabels(svg, box, items, div) {
    var taken = items.map(function (p) { return { l: p.x - 6, r: p.x + 6, t: p.y - 6, b: p.y + 6 }; });
    var unlabelled = [];
    items.sort(function (a, b) { return a.rank - b.rank || a.x - b.x; });
    items.forEach(function (p) {
      var t = text(svg, 0, 0, p.s, p.attrs);
      var bb = t.getBBox();  // at (0, 0): its width, height and how far the text rises above its baseline
      var spot = null;
      GAPS.some(function (gap) {
        return DIRECTIONS.some(function (d) {
          var l = p.x + d[0] * gap - (d[0] < 0 ? bb.width : d[0] === 0 ? bb.width / 2 : 0);
          var top = p.y + d[1] * gap - (d[1] < 0 ? bb.height : d[1] === 0 ? bb.height / 2 : 0);
          var b = { l: l, r: l + bb.width, t: top, b: top + bb.height };
          if (b.l < box.l + 1 || b.r > box.l + box.w - 1 || b.t < box.t + 1 || b.b > box.t + box.h - 1) return false;
          if (taken.some(function (o) { return overlaps(b, o); })) return false;
          spot = { b: b, gap: gap };
          return true;
        });
      });
      if (!spot) { t.remove(); unlabelled.push(p.listed); return; }
      taken.push(spot.b);
      t.setAttribute("x", spot.b.l);
      t.setAttribute("y", spot.b.t - bb.y);
      if (spot.gap > GAPS[0]) {  // far from its point: a leader line to the nearest side of the label
        var nx = Math.max(spot.b.l, Math.min(p.x, spot.b.r)), ny = Math.max(spot.b.t, Math.min(p.y, spot.b.b));
        el("line", { x1: p.x, y1: p.y, x2: nx, y2: ny, stroke: p.attrs.fill, "stroke-width": 0.6, class: "leader" }, svg);
      }
    });
    if (unlabelled.length) {
      var note = document.createElement("p");
      note.className = "unlabelled";
      note.textContent = "No room for the label of: " + unlabelled.join("; ");
      div.appendChild(note);
    }
  }

  // The Pareto plots' x-axis: latency by default; load, first inference, p90, memory or file size on request
  // (the switch above the plots). Only latency has interval-aware fronts computed with the report; on the
  // other axes the front is drawn here, per provenance, from the points that have the figure.
  var AXES = {
    median_ms: { label: "latency (ms, log scale)", unit: " ms", scale: 1 },
    p90_ms: { label: "p90 latency (ms, log scale)", unit: " ms", scale: 1 },
    first_ms: { label: "first inference (ms, log scale)", unit: " ms", scale: 1 },
    load_ms: { label: "load / cold start (ms, log scale)", unit: " ms", scale: 1 },
    memory_bytes: { label: "peak memory (MiB, log scale)", unit: " MiB", scale: 1 / 1048576 },
    size_bytes: { label: "file size (MiB, log scale)", unit: " MiB", scale: 1 / 1048576 }
  };
  function xOf(c, axis) {
    var v = c[axis];
    return v == null || !(v > 0) ? null : v * AXES[axis].scale;
  }
  function frontOf(points, axis) {  // the labels no other point beats on both x (lower) and top-1 (higher)
    var sorted = points.slice().sort(function (a, b) {
      return xOf(a, axis) - xOf(b, axis) || data.models[b.model].top1 - data.models[a.model].top1;
    });
    var best = -Infinity, front = [];
    sorted.forEach(function (c) {
      var acc = data.models[c.model].top1;
      if (acc > best) { front.push(c.label); best = acc; }
    });
    return front;
  }

  // Accuracy vs latency (or another cost) per target, one front per provenance.
  function drawScatter(div, axis) {
    while (div.firstChild) div.removeChild(div.firstChild);
    div.setAttribute("data-axis", axis);
    var target = div.getAttribute("data-target");
    var pts = data.cells.filter(function (c) {
      return c.target === target && c.status === "ok" && xOf(c, axis) != null && data.models[c.model].top1 != null;
    });
    var W = 600, H = 340, box = { l: 48, t: 10, w: 530, h: 280 };
    var svg = frame(div, W, H);
    if (!pts.length) {
      var what = axis === "median_ms" ? "latency" : AXES[axis].label.split(" (")[0];
      text(svg, W / 2, H / 2, "no " + what + " with a known accuracy", { "text-anchor": "middle", class: "empty-plot" });
      return;
    }
    var lat = pts.map(function (c) { return xOf(c, axis); });
    var acc = pts.map(function (c) { return data.models[c.model].top1; });
    var xs = logScale(Math.min.apply(null, lat) / 1.25, Math.max.apply(null, lat) * 1.25, box.l, box.l + box.w);
    var ys = linScale(Math.floor(Math.min.apply(null, acc) - 1), Math.ceil(Math.max.apply(null, acc) + 1), box.t + box.h, box.t, 5);
    axes(svg, box, xs, ys, AXES[axis].label, "top-1 (%)", true);
    var inside = plotArea(svg, box);  // fronts and interval bars: an interval may run past the axis range
    var fronts = axis === "median_ms" ? data.fronts[target] || {} : {};
    var toLabel = [];  // [rank, x, y, text, colour, extra attributes]: placed once every marker is drawn
    Object.keys(STYLE).forEach(function (prov) {
      var mine = pts.filter(function (c) { return c.provenance === prov; });
      var front = axis === "median_ms" ? fronts[prov] || [] : frontOf(mine, axis);
      var fp = front.map(function (label) {
        return mine.filter(function (c) { return c.label === label; })[0];
      }).filter(Boolean);
      if (fp.length > 1) {
        var d = fp.map(function (c, i) {
          return (i ? "L" : "M") + xs.f(xOf(c, axis)).toFixed(1) + "," + ys.f(data.models[c.model].top1).toFixed(1);
        }).join(" ");
        el("path", { d: d, fill: "none", stroke: STYLE[prov].color, "stroke-width": 1.5, "stroke-dasharray": STYLE[prov].dash, class: "front", "data-provenance": prov }, inside);
      }
      var maybe = axis === "median_ms" ? ((data.possibly_optimal || {})[target] || {})[prov] || [] : [];
      mine.forEach(function (c) {
        var x = xs.f(xOf(c, axis)), y = ys.f(data.models[c.model].top1);
        if (axis === "median_ms" && c.low_ms != null && c.high_ms != null) {  // an estimate: its interval as an error bar
          el("line", { x1: xs.f(c.low_ms), x2: xs.f(c.high_ms), y1: y, y2: y, stroke: STYLE[prov].color, "stroke-width": 1, "stroke-opacity": 0.6, class: "error-bar" }, inside);
        }
        var noisy = c.quality === "noisy";
        var pareto = front.indexOf(c.label) >= 0 ? "1" : maybe.indexOf(c.label) >= 0 ? "possibly" : "0";
        var g = el("g", { class: "point" + (noisy ? " noisy" : ""), "data-model": c.label, "data-target": target, "data-provenance": prov, "data-pareto": pareto }, svg);
        marker(g, prov, x, y);
        if (noisy) {  // a busy machine measured it: a red ring says so, the reasons are in the tooltip
          el("circle", { cx: x, cy: y, r: 8, fill: "none", stroke: "#c62828", "stroke-width": 1.5, "stroke-dasharray": "2 2", class: "noisy-ring" }, g);
        }
        var title = el("title", {}, g);
        var iv = axis === "median_ms" && c.low_ms != null ? " [" + c.low_ms.toFixed(2) + "-" + c.high_ms.toFixed(2) + " ms, 80% interval: " + (c.interval_basis || "") + "]" : "";
        var status = pareto === "possibly" ? "; possibly optimal (the intervals overlap)" : "";
        title.textContent = c.label + ": " + xOf(c, axis).toFixed(3) + AXES[axis].unit + iv + status + " (" + prov + (noisy ? ", NOISY: " + (c.quality_reasons || []).join("; ") : "") + "), top-1 " + data.models[c.model].top1 + "% (" + (data.models[c.model].top1_source || "") + ")";
        var rank = pareto === "1" ? 0 : pareto === "possibly" ? 1 : 2;
        var attrs = { class: "label" + (rank === 1 ? " possibly" : ""), fill: STYLE[prov].color, "data-for": c.label, "data-provenance": prov };
        if (rank === 1) attrs["font-style"] = "italic";
        toLabel.push({ rank: rank, x: x, y: y, s: c.label + (rank === 1 ? "?" : ""), attrs: attrs,
          listed: c.label + " (" + prov + ", " + xOf(c, axis).toFixed(2) + AXES[axis].unit + ", " + data.models[c.model].top1 + "%)" });
      });
    });
    placeLabels(svg, box, toLabel, div);
  }
  function drawScatters(axis) {
    document.querySelectorAll(".scatter").forEach(function (div) { drawScatter(div, axis); });
  }
  var axisSwitch = document.getElementById("pareto-axis");
  if (axisSwitch) axisSwitch.addEventListener("change", function () { drawScatters(axisSwitch.value); });
  drawScatters(axisSwitch ? axisSwitch.value : "median_ms");

  // Thread scaling per host target: each model's median latency at each thread count it was measured at.
  document.querySelectorAll(".threads-plot").forEach(function (div) {
    var series = (data.threads || {})[div.getAttribute("data-target")] || {};
    var W = 440, H = 260, box = { l: 48, t: 10, w: 370, h: 200 };
    var svg = frame(div, W, H);
    var names = Object.keys(series);
    var all = [].concat.apply([], names.map(function (m) { return series[m]; }));
    if (!all.length) return;
    var ns = all.map(function (p) { return p[0]; }), ms = all.map(function (p) { return p[1]; });
    var xs = linScale(Math.min.apply(null, ns), Math.max.apply(null, ns), box.l, box.l + box.w, Math.max.apply(null, ns));
    var ys = logScale(Math.min.apply(null, ms) / 1.2, Math.max.apply(null, ms) * 1.2, box.t + box.h, box.t);
    axes(svg, box, xs, ys, "threads", "median ms (log)", false);
    var inside = plotArea(svg, box);
    var legend = document.createElement("p");
    legend.className = "thread-legend";
    div.appendChild(legend);
    names.forEach(function (m, i) {
      var colour = "hsl(" + Math.round(360 * i / names.length) + ", 60%, 40%)";
      var item = document.createElement("span");
      item.style.color = colour;
      item.textContent = (i ? " · " : "") + "— " + m;  // textContent: names are user data
      legend.appendChild(item);
      var d = series[m].map(function (p, j) { return (j ? "L" : "M") + xs.f(p[0]).toFixed(1) + "," + ys.f(p[1]).toFixed(1); }).join(" ");
      el("path", { d: d, fill: "none", stroke: colour, "stroke-width": 1.5, class: "thread-line", "data-model": m }, inside);
      series[m].forEach(function (p) {
        var dot = el("circle", { cx: xs.f(p[0]), cy: ys.f(p[1]), r: 3, fill: colour, class: "thread-point" }, inside);
        el("title", {}, dot).textContent = m + ": " + p[1].toFixed(3) + " ms at " + p[0] + " thread(s)";
      });
    });
  });

  // Per-layer roofline: operational intensity vs share of time, with the target's ridge point.
  document.querySelectorAll(".roofline").forEach(function (div) {
    var r = data.roofline[div.getAttribute("data-model")];
    var W = 440, H = 260, box = { l: 48, t: 10, w: 370, h: 200 };
    var svg = frame(div, W, H);
    if (!r || !r.layers.length) return;
    var xsV = r.layers.map(function (l) { return Math.max(l[0], 0.01); });
    var ysV = r.layers.map(function (l) { return l[1] * 100; });
    var xs = logScale(Math.min(Math.min.apply(null, xsV), r.ridge) / 1.5, Math.max(Math.max.apply(null, xsV), r.ridge) * 1.5, box.l, box.l + box.w);
    var ys = linScale(0, Math.ceil(Math.max.apply(null, ysV)), box.t + box.h, box.t, 4);
    axes(svg, box, xs, ys, "operational intensity (MACs/byte, log)", "% of time", true);
    el("line", { x1: xs.f(r.ridge), x2: xs.f(r.ridge), y1: box.t, y2: box.t + box.h, stroke: "#b00020", "stroke-dasharray": "4,3" }, svg);
    var leftward = xs.f(r.ridge) > box.l + box.w * 0.75;  // near the right edge the label would leave the plot
    text(svg, xs.f(r.ridge) + (leftward ? -4 : 4), box.t + 12, "ridge " + r.ridge.toFixed(0), { fill: "#b00020", "text-anchor": leftward ? "end" : "start" });
    var inside = plotArea(svg, box);
    r.layers.forEach(function (l) {
      el("circle", { cx: xs.f(Math.max(l[0], 0.01)), cy: ys.f(l[1] * 100), r: 3, fill: l[3] === "compute" ? "#4c6ef5" : "#f08c00", "fill-opacity": 0.7, class: "layer" }, inside);
    });
  });

  // Ridge-point sweep (paper Fig. 2/3): latency as the memory system gets relatively slower.
  document.querySelectorAll(".sweep").forEach(function (div) {
    var r = data.roofline[div.getAttribute("data-model")];
    var W = 440, H = 200, box = { l: 48, t: 10, w: 370, h: 140 };
    var svg = frame(div, W, H);
    if (!r || !r.sweep.length) return;
    var v = r.sweep.map(function (p) { return p.latency_ms; });
    var xs = linScale(0, 500, box.l, box.l + box.w, 5);
    var ys = linScale(0, Math.max.apply(null, v) * 1.05, box.t + box.h, box.t, 4);
    axes(svg, box, xs, ys, "ridge point (MACs/byte) at 1 T MAC/s", "ms", false);
    var d = r.sweep.map(function (p, i) { return (i ? "L" : "M") + xs.f(p.ridge).toFixed(1) + "," + ys.f(p.latency_ms).toFixed(1); }).join(" ");
    el("path", { d: d, fill: "none", stroke: "#4c6ef5", "stroke-width": 2, class: "sweep-line" }, plotArea(svg, box));
  });
  document.body.setAttribute("data-rendered", "1");
})();

"""Extract Qualcomm AI Hub's published latencies of zoo models into deploykit's corpus.

Reads the ``qai-hub-models`` wheel as downloaded (``pip download qai-hub-models --no-deps -d /tmp/qhm``; it is
never installed, and deploykit does not depend on it), takes each ``qai_hub_models/models/<id>/perf.yaml`` whose
model is a zoo model, and writes one corpus row per (precision, device, runtime) with its job id::

    .venv/bin/python scripts/extract_aihub_perf.py /tmp/qhm/qai_hub_models-*.whl --check-macs MIRRORS \
        --torchvision /tmp/qhm/torchvision-0.26.0-*.whl --write

Before a model is matched to a zoo name its definition is checked against the zoo's: the manifest's parameter
count (every model) and the MACs of the upstream definition, counted by deploykit's own analysis at the same
resolution: both within 1%. A model that fails is left out and said so. Upstream definitions are read, never
installed: git mirrors (``--check-macs`` folder holding ``<owner>+<repo>/repo``) at the commit the manifest pins,
and for the MobileNet-v3 models, which AI Hub builds with ``torchvision.models``, the torchvision wheel
(``pip download torchvision==0.26.0 --no-deps -d /tmp/qhm``: the newest the 0.65 wheel's ``torchvision<=0.26.0``
allows; installing it would replace the project's CPU torch).

``--write`` replaces the AI Hub rows of ``deploykit/reference/published_latencies.csv`` (other sources' rows are
kept as they are).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import re
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "deploykit" / "reference" / "published_latencies.csv"
SOURCE = "aihub"

# AI Hub model id → (zoo model, resolution, AI Hub variant name in the upstream source or None)
MODELS = {
    "mobilenet_v2": ("mnv2_100", 224),
    "mobilenet_v3_large": ("mnv3_large_100", 224),
    "mobilenet_v3_small": ("mnv3_small_100", 224),
    "mobilenet_v4": ("mnv4_conv_m", 224),  # DEFAULT_VARIANT = "medium" (MobileNetV4ConvMedium), 224 input
    "repvit": ("repvit_m2_3", 224),
}
# perf.yaml runtime → deploykit target name (the profile's AI Hub targets carry these names)
RUNTIMES = {
    "tflite": ("litert", "aihub-litert"),
    "onnx": ("onnxruntime", "aihub-onnx"),
    "qnn_dlc": ("qnn", "aihub-qnn"),
}
# perf.yaml precision → deploykit precision: the artifact's, as the AI Hub profiles' targets name it (a float
# model is submitted as fp32 and the NPU runs it in fp16); w8a16 has no deploykit precision yet
PRECISIONS = {"float": "fp32", "w8a8": "int8", "w8a16": "w8a16", "w8a16_mixed_int16": "w8a16-mixed"}
# AI Hub device → deploykit profile name (where deploykit has one), else a slug of the AI Hub name
DEVICES = {
    "Samsung Galaxy S22 5G": "galaxy-s22",
    "Samsung Galaxy S24": "galaxy-s24",
    "Samsung Galaxy S25": "galaxy-s25",
    "Samsung Galaxy S26": "galaxy-s26",
    "Snapdragon X Elite CRD": "snapdragon-x-elite",
    "Snapdragon X2 Elite CRD": "snapdragon-x2-elite",
    "QCS8550 (Proxy)": "qcs8550-proxy",
    "Snapdragon 7 Gen 4 QRD": "snapdragon-7-gen-4",
    "Arduino VENTUNO Q": "arduino-ventuno-q",
    "Dragonwing IQ-9075 EVK": "iq-9075-evk",
    "Dragonwing Q-6690 MTP": "q-6690-mtp",
    "Dragonwing RB3 Gen 2 Vision Kit": "rb3-gen-2",
    "SA7255P ADP": "sa7255p-adp",
    "SA8295P ADP": "sa8295p-adp",
    "SA8775P ADP": "sa8775p-adp",
}
COLUMNS = [
    "model",
    "resolution",
    "device",
    "target",
    "runtime",
    "compute_unit",
    "precision",
    "latency_ms",
    "source",
    "ref",
    "method",
    "split",
]


def slug(name: str) -> str:
    return DEVICES.get(name) or "aihub-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def read_wheel(wheel: Path) -> tuple[str, dict[str, dict], dict[str, dict]]:
    """(wheel version, model id → perf.yaml, model id → manifest.yaml) for the zoo's models."""
    perf, manifest = {}, {}
    with zipfile.ZipFile(wheel) as z:
        version = wheel.name.split("-")[1]
        for mid in MODELS:
            base = f"qai_hub_models/models/{mid}/"
            perf[mid] = yaml.safe_load(z.read(base + "perf.yaml"))
            manifest[mid] = yaml.safe_load(z.read(base + "manifest.yaml"))
    return version, perf, manifest


def proxied_devices(wheel: Path) -> dict[str, str]:
    """AI Hub device → the chipset it is a proxy of, from the wheel's ``devices_and_chipsets.yaml``. AI Hub lists a
    proxied device's figures with the *same job ids* as its reference device's (the Q-8750 board's are the Galaxy
    S25's, the XR2 Gen 2's the Galaxy S22's, ...): copies, not measurements on that device."""
    with zipfile.ZipFile(wheel) as z:
        if "qai_hub_models/devices_and_chipsets.yaml" not in z.namelist():
            return {}
        table = yaml.safe_load(z.read("qai_hub_models/devices_and_chipsets.yaml"))
    return {name: d["reference_chipset"] for name, d in table.get("devices", {}).items() if d.get("reference_chipset")}


def rows_of(mid: str, perf: dict, version: str, proxies: dict[str, str] | None = None) -> list[dict]:
    """One row per passed job of a zoo model, on a deploykit runtime; a proxied device's copies are left out."""
    zoo, res = MODELS[mid]
    out = []
    for prec, p in perf["precisions"].items():
        for comp in p["components"].values():
            for dev, runtimes in comp["performance_metrics"].items():
                if dev in (proxies or {}):
                    continue
                for rt, v in runtimes.items():
                    if v.get("job_status") != "Passed" or rt not in RUNTIMES:
                        continue
                    runtime, tname = RUNTIMES[rt]
                    unit = str(v.get("primary_compute_unit", "")).lower()
                    counts = v.get("layer_counts", {})
                    on_unit = counts.get(unit, 0)
                    tools = ", ".join(f"{k} {val}" for k, val in sorted(v.get("tool_versions", {}).items()))
                    out.append(
                        {
                            "model": zoo,
                            "resolution": res,
                            "device": slug(dev),
                            "target": f"{tname}-{unit}",
                            "runtime": runtime,
                            "compute_unit": unit,
                            "precision": PRECISIONS.get(prec, prec),
                            "latency_ms": v["inference_time_milliseconds"],
                            "source": SOURCE,
                            "ref": f"qai-hub-models {version} models/{mid}/perf.yaml; {dev}; job {v['job_id']}",
                            "method": (
                                f"AI Hub profile job on {dev} ({rt}, {prec}; {on_unit}/{counts.get('total', 0)} "
                                f"layers on {unit}; {tools})"
                            ),
                            "split": "fit",
                        }
                    )
    return out


# --------------------------------------------------------------------------------------- definition checks


def _git_show(mirror: Path, commit: str, path: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(mirror), "show", f"{commit}:{path}"], capture_output=True, text=True, check=True
    ).stdout


def _load(name: str, text: str, extra: dict | None = None) -> types.ModuleType:
    d = Path(tempfile.mkdtemp())
    (d / f"{name}.py").write_text(text)
    for k, v in (extra or {}).items():
        sys.modules[k] = v
    spec = importlib.util.spec_from_file_location(name, d / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _timm_shim() -> dict:
    """The two timm names RepViT's source imports (timm is not a deploykit dependency): SqueezeExcite as
    timm defines it (rd_ratio 0.25, channels rounded to 8, ReLU, sigmoid gate) and a no-op initialiser."""
    import torch
    from torch import nn

    def make_div(v, divisor=8):
        new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
        return new_v + divisor if new_v < 0.9 * v else new_v

    class SqueezeExcite(nn.Module):
        def __init__(self, channels, rd_ratio=0.0625, rd_channels=None, act_layer=nn.ReLU, **_):
            super().__init__()
            rd = rd_channels or make_div(channels * rd_ratio)
            self.fc1 = nn.Conv2d(channels, rd, 1, bias=True)
            self.act = act_layer(inplace=True)
            self.fc2 = nn.Conv2d(rd, channels, 1, bias=True)

        def forward(self, x):
            s = x.mean((2, 3), keepdim=True)
            return x * torch.sigmoid(self.fc2(self.act(self.fc1(s))))

    layers = types.ModuleType("timm.layers")
    layers.SqueezeExcite = SqueezeExcite
    layers.trunc_normal_ = lambda t, std=0.02: t
    models = types.ModuleType("timm.models")
    models.layers = layers
    models.register_model = lambda f: f
    vt = types.ModuleType("timm.models.vision_transformer")
    vt.trunc_normal_ = layers.trunc_normal_
    models.vision_transformer = vt
    timm = types.ModuleType("timm")
    timm.layers, timm.models = layers, models
    return {"timm": timm, "timm.layers": layers, "timm.models": models, "timm.models.layers": layers,
            "timm.models.vision_transformer": vt}  # fmt: skip


# The torchvision files that define MobileNet-v3, read from the wheel as they are. The rest of the package (image
# I/O, transforms, the C++ extension) is what cannot import beside the project's torch; the definition needs none
# of it, only the stand-ins below for logging and for the weight enums' preprocessing preset.
_TV_FILES = ("models/mobilenetv3.py", "models/_api.py", "models/_utils.py", "models/_meta.py", "ops/misc.py",
             "_utils.py", "_internally_replaced_utils.py")  # fmt: skip
_TV_STANDINS = {
    "utils.py": (
        "import collections.abc, itertools\n"
        "def _log_api_usage_once(obj):\n    pass\n"
        "def _make_ntuple(x, n):\n"
        "    return tuple(x) if isinstance(x, collections.abc.Iterable) else tuple(itertools.repeat(x, n))\n"
    ),
    "transforms/_presets.py": "class ImageClassification:\n    def __init__(self, *args, **kwargs):\n        pass\n",
}


def torchvision_model(wheel: Path, builder: str):
    """``torchvision.models.<builder>(weights=None)`` built from the wheel's own source files, without installing
    torchvision."""
    root = Path(tempfile.mkdtemp()) / "torchvision"
    with zipfile.ZipFile(wheel) as z:
        for rel in _TV_FILES:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(z.read(f"torchvision/{rel}"))
    for rel, text in _TV_STANDINS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for pkg in ("", "models", "ops", "transforms"):
        (root / pkg / "__init__.py").write_text("")

    def forget():  # never let this copy stand in for another (or for an installed torchvision) later on
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]

    forget()
    sys.path.insert(0, str(root.parent))
    try:
        mobilenetv3 = importlib.import_module("torchvision.models.mobilenetv3")
        return getattr(mobilenetv3, builder)(weights=None).eval()
    finally:
        sys.path.remove(str(root.parent))
        forget()


# AI Hub model id → the torchvision builder its model.py calls
TORCHVISION_BUILDERS = {"mobilenet_v3_large": "mobilenet_v3_large", "mobilenet_v3_small": "mobilenet_v3_small"}


def upstream_model(mid: str, manifest: dict, mirrors: Path | None, torchvision: Path | None = None):
    """The manifest's upstream definition (at its pinned commit, or the torchvision wheel's), or None where its
    source was not given."""
    if mid in TORCHVISION_BUILDERS:
        return torchvision_model(torchvision, TORCHVISION_BUILDERS[mid]) if torchvision else None
    repos = manifest.get("external_repos") or {}
    if not repos or mirrors is None:
        return None
    (repo,) = repos.values()
    owner_name = repo["repo_url"].removeprefix("https://github.com/").removesuffix(".git").replace("/", "+")
    mirror = mirrors / owner_name / "repo"
    if not (mirror / "HEAD").exists():
        mirror = mirror / ".git"
    commit = repo["commit_sha"]
    if mid == "mobilenet_v4":
        cfg = _load("model_config", _git_show(mirror, commit, "mobilenet/model_config.py"))
        pkg = types.ModuleType("mobilenet")
        pkg.model_config = cfg
        sys.modules["mobilenet.model_config"] = cfg
        mod = _load("mobilenetv4", _git_show(mirror, commit, "mobilenet/mobilenetv4.py"), {"mobilenet": pkg})
        return mod.MobileNetV4("MobileNetV4ConvMedium")
    if mid == "mobilenet_v2":
        mod = _load("tonylins_mobilenetv2", _git_show(mirror, commit, "MobileNetV2.py"))
        return mod.MobileNetV2(n_class=1000, input_size=224, width_mult=1.0)
    if mid == "repvit":
        mod = _load("repvit_upstream", _git_show(mirror, commit, "model/repvit.py"), _timm_shim())
        return mod.repvit_m2_3(num_classes=1000, distillation=False).eval()
    return None


def check_definition(
    mid: str, manifest: dict, mirrors: Path | None, torchvision: Path | None = None
) -> tuple[str, str]:
    """("ok" | "mismatch" | "unchecked", notes): the manifest's parameters and the upstream definition's MACs
    against the zoo's, both within 1%. A model whose upstream source was not given is "unchecked" and, like a
    mismatch, left out: no row is matched to a zoo name before its MACs are checked."""
    from deploykit.analysis import analyze, analyze_spec

    zoo, res = MODELS[mid]
    mine = analyze_spec(zoo, res, deploy=False)
    deployed = analyze_spec(zoo, res)  # fused, single head: the form whose parameters the manifest counts
    notes = []
    ok, checked = True, True
    published = str(manifest.get("technical_details", {}).get("Number of parameters", ""))
    if published.endswith("M"):
        p = float(published[:-1]) * 1e6
        # the manifest rounds to 3 significant figures
        rel = abs(deployed.params - p) / p
        notes.append(f"params {deployed.params / 1e6:.2f}M vs manifest {published} ({rel:.1%})")
        ok &= rel <= 0.01
    model = upstream_model(mid, manifest, mirrors, torchvision)
    if model is None:
        notes.append("MACs: upstream source not given, not checked")
        checked = False
    else:
        theirs = analyze(model, res)
        zoo_macs = mine.macs  # both in training form (RepViT's upstream is unfused, as AI Hub exports it)
        rel = abs(theirs.macs - zoo_macs) / zoo_macs
        notes.append(f"MACs {theirs.macs / 1e6:.1f}M vs zoo {zoo_macs / 1e6:.1f}M ({rel:.2%})")
        ok &= rel <= 0.01
    return ("mismatch" if not ok else "ok" if checked else "unchecked"), "; ".join(notes)


def write_corpus(aihub_rows: list[dict]) -> int:
    text = CORPUS.read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    old = list(csv.DictReader(body))
    # the new AI Hub rows take the old ones' place, so a rerun that finds the same rows changes nothing
    at = next((i for i, r in enumerate(old) if r["source"] == SOURCE), len(old))
    before = [r for r in old[:at] if r["source"] != SOURCE]
    after = [r for r in old[at:] if r["source"] != SOURCE]
    buf = io.StringIO()
    buf.write("\n".join(header) + "\n")
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in before + aihub_rows + after:
        w.writerow(r)
    CORPUS.write_text(buf.getvalue())
    return len(aihub_rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheel", type=Path)
    ap.add_argument("--check-macs", type=Path, default=None, help="folder of <owner>+<repo>/repo git mirrors")
    ap.add_argument("--torchvision", type=Path, default=None, help="torchvision wheel (for MobileNet-v3's source)")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args(argv)
    version, perf, manifest = read_wheel(a.wheel)
    proxies = proxied_devices(a.wheel)
    print(f"left out, AI Hub's proxies (their jobs are another device's): {', '.join(sorted(proxies)) or 'none'}")
    rows = []
    for mid in MODELS:
        status, note = check_definition(mid, manifest[mid], a.check_macs, a.torchvision)
        verdict = "ok" if status == "ok" else f"{status.upper()}, left out"
        print(f"{mid} → {MODELS[mid][0]}@{MODELS[mid][1]}: {verdict}: {note}")
        if status == "ok":
            got = rows_of(mid, perf[mid], version, proxies)
            print(f"  {len(got)} rows")
            rows += got
    print(f"{len(rows)} AI Hub rows")
    if a.write:
        write_corpus(rows)
        print(f"wrote {CORPUS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The zoo against published facts: params and MACs at default resolution, finite outputs, RepViT fusion."""

from __future__ import annotations

import csv
import os
import pathlib
import subprocess
import sys

import pytest
import torch

from deploykit import catalog
from deploykit.analysis import analyze, analyze_spec
from deploykit.errors import ResolutionError, UnknownModelError
from deploykit.zoo import create_model, get_spec, list_models, published_facts
from tests.conftest import REQUIRED

ALL = [s.name for s in list_models()]
SHARED_CSV = pathlib.Path(__file__).resolve().parents[2] / "shared" / "reference" / "published_models.csv"


def test_every_required_model_is_registered():
    for family, names in REQUIRED.items():
        assert names <= {s.name for s in list_models(family)}, family
    assert set(published_facts()) == set(ALL)


# sha256 of shared/reference/published_models.csv's rows when the shipped copy was last taken from it: beside a
# bare clone (no shared/) the shipped copy is still checked against it, and beside shared/ it is kept current.
SHARED_ROWS_SHA256 = "439b9b691a4d705b767fe370470df79e94cdeb04f759324b1534098f8a4d645b"


def _rows_sha(path: pathlib.Path) -> str:
    import hashlib

    rows = [r for r in csv.reader(path.read_text().splitlines()) if r and not r[0].startswith("#")]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_shipped_facts_equal_shared_reference():
    """The package's copy of the published facts equals shared/reference's (directly, or through the hash of
    its rows when shared/ is not beside this checkout): the test can fail in a bare clone too."""
    shipped = pathlib.Path(__file__).resolve().parents[1] / "deploykit" / "zoo" / "published_models.csv"
    assert _rows_sha(shipped) == SHARED_ROWS_SHA256, "deploykit/zoo/published_models.csv drifted from shared/"
    if SHARED_CSV.exists():
        assert _rows_sha(SHARED_CSV) == SHARED_ROWS_SHA256, (
            "shared/ changed: copy it into deploykit/zoo, update the hash"
        )


@pytest.mark.parametrize("name", ALL)
def test_params_and_macs_match_published(name):
    """Within 2% (or the published rounding) of the paper's or timm's figure.

    Params: the deploy form against the paper (RepViT: against the official fused count), the training form
    against timm. MACs: our strict count (conv/linear/matmul, as the papers count) against the paper; the
    fvcore-convention count against timm, whose benchmark figures were made with fvcore (see analysis.py).
    """
    spec = get_spec(name)
    pub = spec.published
    train = spec.build()
    train_a = analyze(train, spec.resolution, name)
    deploy_a = analyze_spec(name)  # reparameterized where the family has a deploy form
    paper_params = pub.deploy_params_m or pub.params_m
    params_ok = [paper_params and paper_params.agrees(deploy_a.params / 1e6)]
    params_ok.append(pub.timm_params_m and pub.timm_params_m.agrees(train_a.params / 1e6))
    assert any(params_ok), (deploy_a.params, train_a.params, pub)
    if pub.deploy_params_m:  # RepViT deploy form must match the official fused figure itself
        assert pub.deploy_params_m.agrees(deploy_a.params / 1e6)
    macs_ok = [pub.macs_m and pub.macs_m.agrees(deploy_a.macs / 1e6)]
    macs_ok.append(pub.timm_macs_m and pub.timm_macs_m.agrees(train_a.macs_fvcore / 1e6))
    assert any(macs_ok), (deploy_a.macs, train_a.macs_fvcore, pub)


@pytest.mark.parametrize("name", ALL)
def test_small_input_finite_and_batched(name):
    spec = get_spec(name)
    res = max(spec.min_resolution, 64)
    model = spec.build(num_classes=10)
    with torch.no_grad():
        y = model(torch.randn(2, 3, res, res))
    assert y.shape == (2, 10) and torch.isfinite(y).all()


def test_full_size_outputs_finite():
    """One full-size path: the largest hybrid at its native 384×384."""
    model = create_model("mnv4_hybrid_l")
    with torch.no_grad():
        y = model(torch.randn(1, 3, 384, 384))
    assert y.shape == (1, 1000) and torch.isfinite(y).all()


@pytest.mark.parametrize("name", [n for n in ALL if n.startswith("repvit")])
def test_repvit_reparameterize_equal(name):
    torch.manual_seed(0)
    model = get_spec(name).build()
    for m in model.modules():  # non-trivial BN statistics so that fusion is really exercised
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.3, 0.7)
            m.bias.data.uniform_(-0.1, 0.1)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        before = model(x)
        n_before = sum(p.numel() for p in model.parameters())
        after = model.reparameterize()(x)
    assert sum(p.numel() for p in model.parameters()) < n_before
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    rel = (after - before).abs().max() / before.abs().max()
    assert rel <= 1e-4


@pytest.mark.parametrize(
    "alias,name",
    [
        ("mobilenetv4_conv_small", "mnv4_conv_s"),
        ("MNv4-Hybrid-Large", "mnv4_hybrid_l"),
        ("tf_mobilenetv3_large_075", "mnv3_large_075"),
        ("mobilenet_v2", "mnv2_100"),
        ("repvit-m0.9", "repvit_m0_9"),
    ],
)
def test_aliases(alias, name):
    assert get_spec(alias).name == name


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownModelError) as e:
        get_spec("mnv4_conv_z")
    assert "mnv4_conv_s" in str(e.value)


@pytest.mark.parametrize(
    "name,res", [("mobilevit_xs", 100), ("mnv4_conv_s", 0), ("mnv4_conv_s", -224), ("mnv4_conv_s", 230)]
)
def test_bad_resolution(name, res):
    with pytest.raises(ResolutionError):
        create_model(name, resolution=res)


def test_shipped_catalog_is_up_to_date():
    """``deploykit/zoo/catalog.json`` was counted from today's source (else: ``python -m deploykit.catalog --write``)."""
    shipped = catalog.read_shipped()
    assert shipped.get("source_hash") == catalog.source_hash(), "stale: run python -m deploykit.catalog --write"
    rows = {r["name"]: r for r in shipped["rows"]}
    assert list(rows) == ALL
    for name in ("mnv4_conv_s", "mnv3_small_075", "mobilevit_xxs", "repvit_m0_9"):
        assert rows[name] == catalog.count_row(get_spec(name)), name


def test_zoo_and_catalog_do_not_import_torch(tmp_path):
    """Listing the zoo (``deploykit models``) answers from the shipped catalogue without importing torch."""
    code = (
        "import deploykit.zoo, deploykit.catalog, sys; deploykit.catalog.model_rows(); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    env = {**os.environ, "DEPLOYKIT_CACHE": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert not any(tmp_path.iterdir())  # nothing was counted, so nothing was cached

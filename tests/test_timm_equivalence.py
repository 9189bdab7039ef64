"""Our models with timm's weights compute what timm computes.

The fixture ``fixtures/timm_reference.json.gz`` was recorded once by ``fixtures/make_timm_fixture.py`` in a
throwaway venv with timm (see its docstring): for each timm model, its state-dict keys and shapes, and the
logits timm produced with synthetic weights (``synthetic_weights.py``, a pure function of key, shape and seed)
on a seeded input. Here, without timm, we rebuild the identical state dict from the recorded keys, load it into
deploykit's model through the family's explicit key map, and must reproduce timm's logits.
"""

from __future__ import annotations

import gzip
import json
import pathlib

import pytest
import torch
from synthetic_weights import synthetic_input, synthetic_tensor

from deploykit.errors import WeightsError
from deploykit.weights import load_weights, read_state_dict
from deploykit.zoo import get_spec

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "timm_reference.json.gz"
REF = json.loads(gzip.open(FIXTURE, "rt").read())


def timm_state_dict(entry: dict) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(synthetic_tensor(k, shape, REF["seed"])) for k, shape, _ in entry["keys"]}


@pytest.mark.parametrize("name", sorted(REF["models"]))
def test_timm_logits_reproduced(name):
    entry = REF["models"][name]
    spec = get_spec(entry["timm_name"])  # timm's name resolves to our canonical model
    assert spec.name == name
    model = spec.build()
    assert load_weights(model, spec, timm_state_dict(entry)) == "timm"
    x = torch.from_numpy(synthetic_input([entry["batch"], 3, entry["resolution"], entry["resolution"]], REF["seed"]))
    with torch.no_grad():
        ours = model(x)
    want = torch.tensor(entry["logits"])
    assert (ours - want).abs().max().item() <= 1e-4
    if hasattr(model, "reparameterize"):  # RepViT: the fused deploy form must agree too
        with torch.no_grad():
            fused = model.reparameterize()(x)
        assert (fused - want).abs().max().item() <= 1e-4


def test_timm_checkpoint_file_roundtrip(tmp_path):
    """A timm checkpoint on disk (safetensors and weights-only .pth) loads by path."""
    from safetensors.torch import save_file

    entry = REF["models"]["mnv4_conv_s"]
    sd = timm_state_dict(entry)
    spec = get_spec("mnv4_conv_s")
    save_file(sd, tmp_path / "w.safetensors")
    torch.save({"state_dict": sd}, tmp_path / "w.pth")
    for f in ("w.safetensors", "w.pth"):
        model = spec.build()
        assert load_weights(model, spec, tmp_path / f) == "timm"
    # and deploykit's own state dict loads as such
    torch.save(model.state_dict(), tmp_path / "ours.pt")
    assert load_weights(spec.build(), spec, tmp_path / "ours.pt") == "deploykit"


def test_missing_and_extra_keys_are_named():
    entry = REF["models"]["mnv3_small_100"]
    sd = timm_state_dict(entry)
    sd.pop("blocks.0.0.conv_dw.weight")
    sd["blocks.9.9.bogus"] = torch.zeros(1)
    spec = get_spec("mnv3_small_100")
    with pytest.raises(WeightsError) as e:
        load_weights(spec.build(), spec, sd, fmt="timm")
    msg = str(e.value)
    assert "stages.0.0.conv_dw.weight" in msg and "blocks.9.9.bogus" in msg and "\n" not in msg


def test_wrong_width_is_a_shape_error():
    spec = get_spec("mnv3_small_075")
    with pytest.raises(WeightsError, match="shape mismatch"):
        load_weights(spec.build(), spec, timm_state_dict(REF["models"]["mnv3_small_100"]), fmt="timm")


def test_unreadable_file(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="is not a weights file deploykit reads"):
        read_state_dict(bad)
    with pytest.raises(WeightsError, match="not found"):
        read_state_dict(tmp_path / "nope.safetensors")

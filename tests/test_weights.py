"""Real weights: local files and timm's Hugging Face checkpoints, resolved offline against a cache built here.

No test reaches the network. The cache is laid out exactly as huggingface_hub writes it
(``hub/models--ORG--NAME/{blobs,refs,snapshots}``) and holds a real timm-keyed state dict (timm's recorded keys
and shapes for the model, filled by ``synthetic_weights``), so resolving it and loading it strictly through the
timm key map is the same path a downloaded checkpoint takes. Where the online path is exercised, huggingface_hub's
network calls are replaced by stand-ins; everywhere else they are replaced by a trap that fails the test.
"""

from __future__ import annotations

import hashlib
import pathlib

import httpx2
import huggingface_hub
import pytest
import torch
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import RemoteEntryNotFoundError, RepositoryNotFoundError
from safetensors.torch import save, save_file
from synthetic_weights import timm_state_dict

from deploykit.errors import WeightsError
from deploykit.weights import (
    TIMM_DEFAULT_TAGS,
    WeightsSource,
    cached_timm_weights,
    load_source,
    resolve_weights,
    timm_repo_id,
)
from deploykit.zoo import get_spec, list_models

REPO = "timm/mobilenetv4_conv_small.e2400_r224_in1k"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def put_in_cache(hub: pathlib.Path, repo_id: str, filename: str, data: bytes, commit: str = COMMIT) -> pathlib.Path:
    """Write a file the way hf_hub_download does: a blob named by its sha256, a snapshot symlink, refs/main."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    pointer = repo / "snapshots" / commit / filename
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.symlink_to(pathlib.Path("..", "..", "blobs", blob.name))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)  # no newline: huggingface_hub reads the ref without stripping
    return pointer


def _no_network(*args, **kwargs):
    raise AssertionError("the network was touched")


@pytest.fixture
def hub(tmp_path, monkeypatch) -> pathlib.Path:
    """An empty HF cache in tmp, offline: the env for code that reads it now, constants for what was read at import."""
    home = tmp_path / "hf"
    cache = home / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HOME", str(home))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", _no_network)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _no_network)
    return cache


@pytest.fixture
def mnv4_bytes() -> bytes:
    return save(timm_state_dict("mnv4_conv_s"))


def test_fake_cache_is_what_huggingface_hub_reads(hub, mnv4_bytes):
    """The layout built here is found by huggingface_hub itself, both ways it looks into the cache."""
    from huggingface_hub.file_download import hf_hub_download  # the real one, not the trap

    pointer = put_in_cache(hub, REPO, "model.safetensors", mnv4_bytes)
    assert huggingface_hub.try_to_load_from_cache(REPO, "model.safetensors") == str(pointer)
    assert hf_hub_download(REPO, "model.safetensors", local_files_only=True) == str(pointer)


@pytest.mark.parametrize("request_", ["timm", f"hf-hub:{REPO}", f"hf_hub:{REPO}", f"  hf-hub:{REPO} "])
def test_timm_checkpoint_from_cache_offline_loads_strictly(hub, mnv4_bytes, request_):
    put_in_cache(hub, REPO, "model.safetensors", mnv4_bytes)
    spec = get_spec("mnv4_conv_s")
    src = resolve_weights(request_, spec)
    assert src == WeightsSource(
        path=hub / f"models--timm--{REPO.split('/')[1]}" / "snapshots" / COMMIT / "model.safetensors",
        source=f"hf-hub:{REPO}",
        sha256=hashlib.sha256(mnv4_bytes).hexdigest(),
        real=True,
    )
    model = spec.build()
    assert load_source(model, spec, src) == "timm"
    sd = timm_state_dict("mnv4_conv_s")
    ours = model.state_dict()
    # the weights landed: every tensor of the file is in the model, under our names
    assert sorted(round(float(v.float().sum()), 3) for v in sd.values()) == sorted(
        round(float(v.float().sum()), 3) for v in ours.values()
    )
    assert cached_timm_weights(spec) == src


def test_offline_flag_is_read_at_call_time_from_the_env(hub, mnv4_bytes, monkeypatch):
    """Users set HF_HUB_OFFLINE after huggingface_hub was imported (constants say online): still no network."""
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(WeightsError, match="offline mode is on"):
        resolve_weights("timm", get_spec("mnv4_conv_s"))
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(WeightsError, match="offline mode is on"):
        resolve_weights("timm", get_spec("mnv4_conv_s"), offline=True)
    # and a cached file needs no network even online
    put_in_cache(hub, REPO, "model.safetensors", mnv4_bytes)
    assert resolve_weights("timm", get_spec("mnv4_conv_s"), offline=False).source == f"hf-hub:{REPO}"


def test_pytorch_bin_when_the_repo_has_no_safetensors(hub):
    repo = "timm/mobilenetv3_small_100.lamb_in1k"
    spec = get_spec("mnv3_small_100")
    buf = hub.parent / "w.bin"
    torch.save(timm_state_dict("mnv3_small_100"), buf)
    put_in_cache(hub, repo, "pytorch_model.bin", buf.read_bytes())
    # huggingface_hub's marker for "this file does not exist at that commit"
    no_exist = hub / f"models--{repo.replace('/', '--')}" / ".no_exist" / COMMIT / "model.safetensors"
    no_exist.parent.mkdir(parents=True)
    no_exist.touch()
    src = resolve_weights("timm", spec)
    assert src.path.name == "pytorch_model.bin" and src.source == f"hf-hub:{repo}"
    assert load_source(spec.build(), spec, src) == "timm"


def test_revision_is_kept_in_the_source(hub, mnv4_bytes):
    put_in_cache(hub, REPO, "model.safetensors", mnv4_bytes)
    src = resolve_weights(f"hf-hub:{REPO}@{COMMIT}", get_spec("mnv4_conv_s"))
    assert src.source == f"hf-hub:{REPO}@{COMMIT}"
    with pytest.raises(WeightsError) as e:
        resolve_weights(f"hf-hub:{REPO}@v9", get_spec("mnv4_conv_s"))
    assert "--revision v9" in str(e.value)


def test_cold_cache_offline_says_what_to_download_and_where(hub):
    spec = get_spec("mnv4_conv_s")
    for request in ("timm", f"hf-hub:{REPO}"):
        with pytest.raises(WeightsError) as e:
            resolve_weights(request, spec)
        text = str(e.value)
        assert "\n" not in text
        assert f"{REPO} is not in the Hugging Face cache ({hub})" in text
        assert f"hf download {REPO} model.safetensors" in text
        assert "HF_HOME" in text
    assert cached_timm_weights(spec) is None


def test_unreachable_hub_fails_fast_without_hf_hub_download(hub, monkeypatch):
    """Online but no network: one HEAD, then the one-line cold-cache error (no retries with backoff)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    calls = []

    def head(url, **kwargs):
        calls.append((url, kwargs.get("timeout")))
        raise httpx2.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", head)
    with pytest.raises(WeightsError) as e:
        resolve_weights("timm", get_spec("mnv4_conv_s"))
    assert "\n" not in str(e.value)
    assert "the hub cannot be reached" in str(e.value) and f"hf download {REPO}" in str(e.value)
    assert len(calls) == 1 and calls[0][1] is not None and calls[0][1] <= 10


def _response(status: int, url: str) -> httpx2.Response:
    return httpx2.Response(status, request=httpx2.Request("HEAD", url))


def test_download_online_falls_back_to_pytorch_bin(hub, monkeypatch):
    """The online path, with huggingface_hub's network calls stood in: safetensors absent, the .bin downloaded."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    repo = "timm/mobilenetv3_small_100.lamb_in1k"
    buf = hub.parent / "w.bin"
    torch.save(timm_state_dict("mnv3_small_100"), buf)

    def head(url, **kwargs):
        if url.endswith("model.safetensors"):
            raise RemoteEntryNotFoundError("404 Client Error: Entry Not Found", response=_response(404, url))

    def download(repo_id, filename, **kwargs):
        assert (repo_id, filename) == (repo, "pytorch_model.bin") and kwargs["etag_timeout"] <= 10
        return str(put_in_cache(hub, repo_id, filename, buf.read_bytes()))

    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", head)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    spec = get_spec("mnv3_small_100")
    src = resolve_weights("timm", spec)
    assert src.source == f"hf-hub:{repo}" and src.path.name == "pytorch_model.bin" and src.real
    assert src.sha256 == hashlib.sha256(buf.read_bytes()).hexdigest()
    assert load_source(spec.build(), spec, src) == "timm"
    assert cached_timm_weights(spec) == src


@pytest.mark.parametrize(
    "error, message",
    [
        (
            lambda url: RepositoryNotFoundError("401 Client Error\nRepository Not Found", response=_response(401, url)),
            "no Hugging Face repo timm/nope.x (or it is private)",
        ),
        (
            lambda url: huggingface_hub.errors.HfHubHTTPError("500 Server Error\nboom", response=_response(500, url)),
            "cannot get weights from timm/nope.x: HfHubHTTPError: 500 Server Error",
        ),
        (lambda url: OSError("disk full"), "cannot get weights from timm/nope.x: OSError: disk full"),
    ],
)
def test_hub_errors_become_one_line(hub, monkeypatch, error, message):
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)

    def head(url, **kwargs):
        raise error(url)

    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", head)
    with pytest.raises(WeightsError) as e:
        resolve_weights("hf-hub:timm/nope.x", get_spec("mnv4_conv_s"), offline=False)
    assert "\n" not in str(e.value) and message in str(e.value)
    assert e.value.__cause__ is None and e.value.__suppress_context__


@pytest.mark.parametrize("request_", ["hf-hub:", "hf-hub:nonsense", "hf-hub:a/b/c", "hf-hub:timm/x@"])
def test_malformed_hub_request(hub, request_):
    with pytest.raises(WeightsError, match="not a Hugging Face repo"):
        resolve_weights(request_, get_spec("mnv4_conv_s"))


def test_model_without_timm_checkpoint(hub):
    spec = get_spec("mnv1_025")
    assert spec.timm_name is None
    with pytest.raises(WeightsError, match="mnv1_025 has no timm checkpoint") as e:
        resolve_weights("timm", spec)
    assert "--weights FILE" in str(e.value)
    assert cached_timm_weights(spec) is None


def test_every_timm_model_has_a_default_tag():
    named = [s for s in list_models() if s.timm_name]
    assert named
    for spec in named:
        assert spec.timm_name in TIMM_DEFAULT_TAGS or "." in spec.timm_name, spec.name
        assert timm_repo_id(spec).startswith(f"timm/{spec.timm_name}.")
    assert timm_repo_id(get_spec("mnv4_conv_s")) == REPO
    # the tag is trained at the zoo model's resolution where it says one
    for spec in named:
        tag = TIMM_DEFAULT_TAGS.get(spec.timm_name, "")
        if "_r" in tag:
            assert f"_r{spec.resolution}_" in tag, (spec.name, tag)


def test_local_file(tmp_path, monkeypatch):
    spec = get_spec("mnv1_025")  # no timm checkpoint: a file is the way to real weights
    model = spec.build()
    save_file(model.state_dict(), tmp_path / "mine.safetensors")
    monkeypatch.chdir(tmp_path)
    src = resolve_weights("mine.safetensors", spec)
    path = tmp_path / "mine.safetensors"
    assert src == WeightsSource(path=path, source=f"file:{path}", sha256=_sha(path), real=True)
    assert load_source(spec.build(), spec, src) == "deploykit"
    # a timm checkpoint file works the same way
    spec = get_spec("mnv4_conv_s")
    save_file(timm_state_dict("mnv4_conv_s"), tmp_path / "timm.safetensors")
    src = resolve_weights(str(tmp_path / "timm.safetensors"), spec)
    assert src.source == f"file:{tmp_path / 'timm.safetensors'}" and src.real
    assert load_source(spec.build(), spec, src) == "timm"


def test_missing_local_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = get_spec("mnv4_conv_s")
    with pytest.raises(WeightsError, match="weights file not found") as e:
        resolve_weights("nope.safetensors", spec)
    assert "\n" not in str(e.value) and str(tmp_path / "nope.safetensors") in str(e.value)
    with pytest.raises(WeightsError, match="is not a file"):
        resolve_weights(str(tmp_path), spec)
    with pytest.raises(WeightsError, match=f"hf-hub:{REPO}"):  # a repo id without its prefix
        resolve_weights(REPO, spec)


def test_load_source_checks_the_hash(tmp_path):
    spec = get_spec("mnv4_conv_s")
    path = tmp_path / "w.safetensors"
    save_file(timm_state_dict("mnv4_conv_s"), path)
    src = resolve_weights(str(path), spec)
    sd = timm_state_dict("mnv4_conv_s")
    sd["conv_stem.weight"] = sd["conv_stem.weight"] + 1
    save_file(sd, path)
    with pytest.raises(WeightsError, match="changed after it was resolved"):
        load_source(spec.build(), spec, src)


def test_wrong_checkpoint_for_the_model_is_named(hub, mnv4_bytes):
    put_in_cache(hub, REPO, "model.safetensors", mnv4_bytes)
    spec = get_spec("mnv3_small_100")
    src = resolve_weights(f"hf-hub:{REPO}", spec)
    with pytest.raises(WeightsError, match="weights do not fit mnv3_small_100"):
        load_source(spec.build(), spec, src)


def _sha(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "content, says",
    [
        (b"hello", "neither a zip nor a pickle"),  # the unpickler said "KeyError: 101" (the byte 'e')
        (b"e" * 50, "neither a zip nor a pickle"),  # ... or "IndexError: pop from empty list"
        (bytes(range(256)) * 4, "neither a zip nor a pickle"),
    ],
)
def test_a_file_that_is_not_a_checkpoint_is_said_so_not_in_the_unpicklers_words(tmp_path, content, says):
    from deploykit.weights import read_state_dict

    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError) as e:
        read_state_dict(path)
    assert f"{path} is not a weights file deploykit reads ({says}" in str(e.value)
    assert "KeyError" not in str(e.value) and "IndexError" not in str(e.value) and "\n" not in str(e.value)


def test_a_pickle_of_objects_is_told_apart_from_a_damaged_file(tmp_path):
    import argparse

    import torch

    from deploykit.weights import read_state_dict

    path = tmp_path / "objects.pth"
    torch.save({"args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(WeightsError, match="a pickle of Python objects, not only tensors"):
        read_state_dict(path)

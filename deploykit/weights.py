"""Loading checkpoints into zoo models: deploykit's own state dicts and timm's, through an explicit key map.

Files are read without unpickling arbitrary objects: ``.safetensors`` through safetensors, anything else with
``torch.load(..., weights_only=True)``. A timm checkpoint is recognised by its keys and renamed through the
model's ``timm_key_map`` (ordered regex rules, one list per family). Loading is strict: a missing, extra or
mis-shaped key is a :class:`WeightsError` that names the keys.

Real weights. Latency needs no trained weights, but accuracy, calibration for int8 and every "does the export
still classify" check do, so :func:`resolve_weights` turns what the user asked for into one local file plus its
provenance (:class:`WeightsSource`):

* a path: the user's own checkpoint (``file:/abs/path``);
* ``timm``: the model's checkpoint in timm's Hugging Face repo ``timm/<timm_name>.<tag>``, where the tag is
  timm's default pretrained tag for that architecture (:data:`TIMM_DEFAULT_TAGS`, the weights the zoo's
  published top-1 and resolution refer to), unless the spec's ``timm_name`` already carries one;
* ``hf-hub:ORG/NAME[@REVISION]``: timm's own syntax, any repo holding ``model.safetensors`` (preferred) or
  ``pytorch_model.bin``.

The normalised source and the sha256 of the file's bytes go into the artifact manifest, so an exported model
says exactly which weights it carries; :func:`load_source` checks the hash again before it loads.

Hub files live in huggingface_hub's standard cache (``HF_HOME``/``HF_HUB_CACHE``, read by huggingface_hub when
it is imported). The cache is looked at first and, when it holds the file, the network is not touched at all
(runs are reproducible and fast on machines without network). Otherwise: with ``HF_HUB_OFFLINE=1`` (read at
call time) or ``offline=True`` nothing is attempted and a cold cache is a one-line :class:`WeightsError` that
says what to download and where; online, one HEAD request with a short timeout decides whether the hub can be
reached before ``hf_hub_download`` is called (a bare ``hf_hub_download`` with no network retries with backoff
for tens of seconds before it gives up). Every huggingface_hub or network failure becomes a one-line
:class:`WeightsError`, never a traceback.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .errors import WeightsError
from .zoo.registry import ModelSpec

# Wrappers training scripts put around the state dict.
_WRAPPER_KEYS = ("state_dict", "model", "model_ema", "state_dict_ema", "module")


_WEIGHTS_HINT = "give a .safetensors file or a .pth/.pt state dict saved with torch.save (read with weights_only=True)"


def _reader_says(e: Exception) -> str:
    """What a reader's failure tells a user. The unpickler's own errors on stray bytes (``KeyError: 101``, ``pop
    from empty list``) name its internals, not the file, so they are said as what they mean."""
    text = str(e).splitlines()[0] if str(e) else ""
    if isinstance(e, (KeyError, IndexError, EOFError)) or type(e).__name__ == "UnpicklingError":
        if "Unsupported global" in str(e):  # a real pickle that holds objects other than tensors
            return "a pickle of Python objects, not only tensors: torch.load refuses it with weights_only=True"
        return "neither a zip nor a pickle that torch.save writes: the file is damaged or of another kind"
    return f"{type(e).__name__}: {text}"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # any reader failure is a bad file, said in one line
        raise WeightsError(
            f"{path} is not a weights file deploykit reads ({_reader_says(e)})", hint=_WEIGHTS_HINT
        ) from None
    for key in _WRAPPER_KEYS:
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def map_timm_keys(state_dict: dict[str, torch.Tensor], rules: tuple[tuple[str, str], ...]) -> dict[str, torch.Tensor]:
    """Rename timm keys to ours: the first rule whose pattern matches a key rewrites it; others pass unchanged."""
    compiled = [(re.compile(p), r) for p, r in rules]
    out = {}
    for key, value in state_dict.items():
        new = key
        for pattern, repl in compiled:
            if pattern.search(key):
                new = pattern.sub(repl, key, count=1)
                break
        out[new] = value
    return out


def load_weights(model: nn.Module, spec: ModelSpec, source: str | Path | dict, fmt: str = "auto") -> str:
    """Load ``source`` (a path or a state dict) into ``model``, strictly. Returns the format used: ours or timm.

    ``fmt="auto"`` takes the checkpoint as deploykit's own when its keys are exactly the model's, else as timm's.
    """
    sd = read_state_dict(source) if not isinstance(source, dict) else source
    expected = model.state_dict()
    if fmt == "auto":
        fmt = "deploykit" if set(sd) == set(expected) else "timm"
    origin = {k: k for k in sd}
    if fmt == "timm":
        if not spec.timm_key_map:
            raise WeightsError(f"{spec.name} has no timm key map", hint="give a deploykit state dict instead")
        mapped = map_timm_keys(sd, spec.timm_key_map)
        origin = dict(zip(mapped, sd))  # renaming keeps order: ours → the file's own name
        sd = mapped
    elif fmt != "deploykit":
        raise WeightsError(f"unknown weights format {fmt!r}", hint="use auto, timm or deploykit")
    _check_keys(spec.name, fmt, sd, expected, origin)
    model.load_state_dict(sd, strict=True)
    return fmt


def _check_keys(name: str, fmt: str, sd: dict, expected: dict, origin: dict[str, str]) -> None:
    missing = [k for k in expected if k not in sd]
    extra = [origin[k] for k in sd if k not in expected]  # named as in the user's file
    shapes = [
        f"{k} {tuple(sd[k].shape)}≠{tuple(expected[k].shape)}"
        for k in expected
        if k in sd and sd[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s): {_few(missing)}")
    if extra:
        problems.append(f"unexpected {len(extra)} key(s): {_few(extra)}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es): {_few(shapes)}")
    if problems:
        raise WeightsError(
            f"weights do not fit {name} (read as {fmt}): " + "; ".join(problems),
            hint="check the model name and width; timm checkpoints load into the model of the same timm name",
        )


def _few(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def state_dict_sha256(model: nn.Module) -> str:
    """A stable hash of a model's weights (names, shapes, bytes): the key for export caching."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# --- real weights: a local file or a Hugging Face Hub checkpoint, resolved to one file plus its provenance ---

# Files timm pushes to its hub repos, in order of preference (timm's HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME).
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

# timm's default pretrained tag per architecture: the first tag of the architecture in timm's ``default_cfgs``
# (what ``timm.create_model(name, pretrained=True)`` loads), i.e. the hub repo ``timm/<name>.<tag>``. Each one
# is trained at the zoo model's default resolution.
TIMM_DEFAULT_TAGS: dict[str, str] = {
    "mobilenetv1_100": "ra4_e3600_r224_in1k",
    "mobilenetv2_100": "ra_in1k",
    "mobilenetv2_050": "lamb_in1k",
    "mobilenetv3_large_100": "ra_in1k",
    "tf_mobilenetv3_large_075": "in1k",
    "mobilenetv3_small_100": "lamb_in1k",
    "mobilenetv3_small_075": "lamb_in1k",
    "mobilenetv4_conv_small": "e2400_r224_in1k",
    "mobilenetv4_conv_medium": "e500_r256_in1k",
    "mobilenetv4_conv_large": "e600_r384_in1k",
    "mobilenetv4_hybrid_medium": "ix_e550_r256_in1k",
    "mobilenetv4_hybrid_large": "ix_e600_r384_in1k",
    "mobilevit_xxs": "cvnets_in1k",
    "mobilevit_xs": "cvnets_in1k",
    "mobilevit_s": "cvnets_in1k",
    "repvit_m0_9": "dist_300e_in1k",
    "repvit_m1_0": "dist_300e_in1k",
    "repvit_m1_1": "dist_300e_in1k",
    "repvit_m1_5": "dist_300e_in1k",
    "repvit_m2_3": "dist_300e_in1k",
}

# Seconds for the one HEAD request that decides whether the hub can be reached (and hf_hub_download's etag wait).
HUB_TIMEOUT_S = 10.0

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class WeightsSource:
    """Weights resolved to one local file, with what goes into the manifest (``source`` and ``sha256``)."""

    path: Path  # a local file (.safetensors or .pth/.bin) ready for read_state_dict
    source: str  # normalised request: "hf-hub:timm/mobilenetv4_conv_small.e2400_r224_in1k" or "file:/abs/path"
    sha256: str  # of the file's bytes
    real: bool  # True: trained weights from a checkpoint (hub or file)


def timm_repo_id(spec: ModelSpec) -> str | None:
    """The hub repo of the model's timm checkpoint (``timm/<timm_name>.<tag>``), or None when it has none."""
    if not spec.timm_name:
        return None
    if "." in spec.timm_name:  # already tagged
        return f"timm/{spec.timm_name}"
    tag = TIMM_DEFAULT_TAGS.get(spec.timm_name)
    return f"timm/{spec.timm_name}.{tag}" if tag else None


def resolve_weights(request: str, spec: ModelSpec, offline: bool | None = None) -> WeightsSource:
    """Resolve ``request`` (a path, ``timm`` or ``hf-hub:ORG/NAME[@REV]``) to a local file for ``spec``.

    ``offline=None`` follows ``HF_HUB_OFFLINE`` (read now, not at import). A hub file already in the cache is
    used without touching the network; see the module docstring for the rest.
    """
    request = request.strip()
    if request == "timm":
        repo_id = timm_repo_id(spec)
        if repo_id is None:
            if not spec.timm_name:
                raise WeightsError(
                    f"{spec.name} has no timm checkpoint",
                    hint="give your own checkpoint with --weights FILE (.safetensors or .pth)",
                )
            raise WeightsError(
                f"no default pretrained tag is known for timm's {spec.timm_name}",
                hint=f"name the checkpoint: --weights hf-hub:timm/{spec.timm_name}.TAG",
            )
        return _resolve_hub(repo_id, None, offline)
    for prefix in ("hf-hub:", "hf_hub:"):
        if request.startswith(prefix):
            repo_id, at, revision = request[len(prefix) :].strip().partition("@")
            if not _REPO_ID.match(repo_id) or (at and not revision):
                raise WeightsError(
                    f"not a Hugging Face repo: {request!r}",
                    hint="write hf-hub:ORG/NAME or hf-hub:ORG/NAME@REVISION, e.g. "
                    f"hf-hub:{timm_repo_id(spec) or 'timm/mobilenetv4_conv_small.e2400_r224_in1k'}",
                )
            return _resolve_hub(repo_id, revision or None, offline)
    return _resolve_file(request)


def cached_timm_weights(spec: ModelSpec) -> WeightsSource | None:
    """The model's timm checkpoint when it is already in the local Hugging Face cache, else None (no network)."""
    repo_id = timm_repo_id(spec)
    if repo_id is None:
        return None
    try:
        path = _cached_hub_file(repo_id, None)
    except WeightsError:
        return None
    return _hub_source(repo_id, None, path) if path else None


def load_source(model: nn.Module, spec: ModelSpec, src: WeightsSource, fmt: str = "auto") -> str:
    """Load a resolved source strictly (through the timm key map when it is timm's); returns the format used.

    The file is hashed again first: what is loaded is what ``src.sha256`` (and so the manifest) says.
    """
    if not src.path.is_file():
        raise WeightsError(f"weights file not found: {src.path} (resolved from {src.source})")
    if _sha256(src.path) != src.sha256:
        raise WeightsError(
            f"{src.path} changed after it was resolved from {src.source} (sha256 differs)",
            hint="resolve the weights again",
        )
    return load_weights(model, spec, src.path, fmt)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _resolve_file(request: str) -> WeightsSource:
    path = Path(os.path.abspath(os.path.expanduser(request)))  # absolute, symlinks kept (the suffix picks the reader)
    if not path.is_file():
        what = "is not a file" if path.exists() else "not found"
        hint = "give a .safetensors or .pth file, `timm` (the model's timm checkpoint) or hf-hub:ORG/NAME"
        if not path.exists() and _REPO_ID.match(request):
            hint = f"for the Hugging Face repo write hf-hub:{request}"
        raise WeightsError(f"weights file {what}: {path}", hint=hint)
    return WeightsSource(path=path, source=f"file:{path}", sha256=_sha256(path), real=True)


def _hub_source(repo_id: str, revision: str | None, path: str | Path) -> WeightsSource:
    path = Path(path)  # the snapshot path, not the blob it links to: its name carries the suffix
    source = f"hf-hub:{repo_id}" + (f"@{revision}" if revision else "")
    return WeightsSource(path=path, source=source, sha256=_sha256(path), real=True)


def _hub():
    try:
        import huggingface_hub
    except ImportError:
        raise WeightsError(
            "hub weights need huggingface_hub, which is not installed",
            hint="pip install huggingface_hub, or give a local checkpoint file",
        ) from None
    return huggingface_hub


def _hub_offline(offline: bool | None) -> bool:
    if offline is not None:
        return offline
    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return env.strip().upper() in {"1", "ON", "YES", "TRUE"} or bool(_hub().constants.HF_HUB_OFFLINE)


def _cached_hub_file(repo_id: str, revision: str | None) -> str | None:
    """The preferred weights file of ``repo_id`` in the local cache, or None. Reads the disk only."""
    hf = _hub()
    for filename in HF_WEIGHT_FILES:
        try:
            found = hf.try_to_load_from_cache(repo_id, filename, revision=revision)
        except (OSError, ValueError) as e:  # an unreadable cache, an invalid repo id
            raise _hub_error(repo_id, e) from None
        if isinstance(found, str):  # not None, not the "known to be absent" marker
            return found
    return None


def _resolve_hub(repo_id: str, revision: str | None, offline: bool | None) -> WeightsSource:
    cached = _cached_hub_file(repo_id, revision)
    if cached:
        return _hub_source(repo_id, revision, cached)
    if _hub_offline(offline):
        raise _cold_cache(repo_id, revision, "offline mode is on (HF_HUB_OFFLINE)")
    hf = _hub()
    from huggingface_hub.errors import OfflineModeIsEnabled, RemoteEntryNotFoundError

    try:
        import httpx2 as _http  # huggingface_hub 1.x/2.x transport

        unreachable: tuple[type[BaseException], ...] = (_http.TransportError, OfflineModeIsEnabled)
    except ImportError:  # pragma: no cover - older huggingface_hub on requests
        unreachable = (ConnectionError, TimeoutError, OfflineModeIsEnabled)

    for filename in HF_WEIGHT_FILES:
        try:
            # One HEAD with a short timeout and no retries: hf_hub_download alone would retry with backoff.
            url = hf.hf_hub_url(repo_id, filename, revision=revision)
            hf.get_hf_file_metadata(url, timeout=HUB_TIMEOUT_S)
        except RemoteEntryNotFoundError:
            continue  # the repo has no such file: try the next
        except unreachable:
            raise _cold_cache(repo_id, revision, "the hub cannot be reached") from None
        except Exception as e:  # huggingface_hub's HTTP and validation errors, OSError
            raise _hub_error(repo_id, e) from None
        try:
            path = hf.hf_hub_download(repo_id, filename, revision=revision, etag_timeout=HUB_TIMEOUT_S)
        except unreachable:
            raise _cold_cache(repo_id, revision, "the download was cut off") from None
        except Exception as e:
            raise _hub_error(repo_id, e) from None
        return _hub_source(repo_id, revision, path)
    raise WeightsError(
        f"{repo_id} holds no weights file (looked for {', '.join(HF_WEIGHT_FILES)})",
        hint="timm's repos hold model.safetensors; check the repo id",
    )


def _cache_dir() -> str:
    return str(_hub().constants.HF_HUB_CACHE)


def _cold_cache(repo_id: str, revision: str | None, why: str) -> WeightsError:
    rev = f" --revision {revision}" if revision else ""
    rev_text = f"@{revision}" if revision else ""
    return WeightsError(
        f"{repo_id}{rev_text} is not in the Hugging Face cache ({_cache_dir()}) and {why}",
        hint=f"on a machine with network run `hf download {repo_id} {HF_WEIGHT_FILES[0]}{rev}`"
        " (huggingface_hub's CLI), then copy that machine's cache (~/.cache/huggingface/hub) to"
        f" {_cache_dir()} or point HF_HOME/HF_HUB_CACHE at the copy; or give the downloaded file's path",
    )


def _hub_error(repo_id: str, e: BaseException) -> WeightsError:
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, GatedRepoError):
        return WeightsError(f"{repo_id} is gated on the Hugging Face Hub", hint="accept its terms and `hf auth login`")
    if isinstance(e, RepositoryNotFoundError):
        return WeightsError(
            f"no Hugging Face repo {repo_id} (or it is private)",
            hint="check the name: timm's repos are timm/<model>.<tag>, e.g. timm/mobilenetv4_conv_small.e2400_r224_in1k",
        )
    if isinstance(e, RevisionNotFoundError):
        return WeightsError(f"{repo_id} has no such revision: {first}")
    return WeightsError(f"cannot get weights from {repo_id}: {type(e).__name__}: {first}")

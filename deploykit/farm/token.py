"""The farm's token: Ray runs any code a holder of it sends, so the file is its owner's alone (mode 600), whoever
causes it to exist: `farm up`, `farm join`, or a local Ray that `sweep --executor ray` starts."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ..errors import DeploykitError


def ensure_token(create: bool) -> dict[str, str]:
    """The environment Ray needs for token authentication; on the head (``create``) a token is made if none
    exists. A worker without one is refused here, before Ray says it less plainly. The token file is left
    readable by its owner alone (mode 600): Ray runs any code a holder of the token sends."""
    env = {"RAY_AUTH_MODE": "token"}
    if os.environ.get("RAY_AUTH_TOKEN"):
        return env
    path = token_path()
    if path.is_file() and path.read_text().strip():
        _keep_private(path)
        return env
    if not create:
        raise DeploykitError(
            f"no farm token: neither $RAY_AUTH_TOKEN nor {path}",
            hint="copy the head's ~/.ray/auth_token to this host (scp HEAD:.ray/auth_token ~/.ray/) or export RAY_AUTH_TOKEN",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    # missing or empty: written here, created 600 (an empty file of another mode is made 600 before the write)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return env


def token_path() -> Path:
    """Where Ray reads the token from: ``$RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token`` (home read now)."""
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def _keep_private(path: Path) -> None:
    """A token file of ours that others may read (Ray writes its own with the umask's mode, 644) is made 600."""
    st = path.stat()
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        path.chmod(0o600)


def private_local_token() -> None:
    """Before ``ray.init`` starts a local Ray: Ray turns token authentication on for it and, with no token
    yet, writes ``~/.ray/auth_token`` readable by everyone; deploykit creates it first, mode 600."""
    if os.environ.get("RAY_AUTH_MODE", "token").lower() == "token":
        ensure_token(create=True)

"""Which Streamlit sessions may send files to the upload endpoint (issue 16, item 1).

Streamlit stores any file PUT to `/_stcore/upload_file/<session id>/<file id>` for any live
session, signed in or not (its XSRF check is a double-submit cookie any client can satisfy), so
a visitor who never signed in could make the server hold up to `max_upload_bytes` per request.
`dashboard.auth` records here, on every script run, whether the session's signed-in account may
upload; `dashboard.server.OriginGuard` refuses an upload for any other session before a byte of
the body is read.

No streamlit import: the server's middleware imports this module, and both sides must share
the one in `sys.modules` (the dashboard runs in the server's process).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_lock = threading.Lock()
_may_upload: set[str] = set()
_PRUNE_ABOVE = 256  # session ids kept before the ones no longer live are forgotten


def set_session(
    session_id: str, allowed: bool, *, is_live: Callable[[str], bool] | None = None
) -> None:
    """Record whether the session may upload now (its account signed in with the upload role)."""
    with _lock:
        if allowed:
            _may_upload.add(session_id)
            if is_live is not None and len(_may_upload) > _PRUNE_ABOVE:
                _may_upload.intersection_update({s for s in _may_upload if is_live(s)})
        else:
            _may_upload.discard(session_id)


def may_upload(session_id: str) -> bool:
    with _lock:
        return session_id in _may_upload


UPLOAD_PATH = "/_stcore/upload_file/"


def upload_session(path: str) -> str | None:
    """The session id of an upload request's path, or None when it is not an upload."""
    _before, found, rest = path.partition(UPLOAD_PATH)
    if not found:
        return None
    return rest.split("/", 1)[0]

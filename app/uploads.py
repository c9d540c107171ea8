"""This session's upload folder, and sweeping the folders of ended sessions.

Uploads live in a per-session folder (:mod:`pruning_core.uploads`) that is removed once the session
has ended; folders left by a crashed server are removed once per process.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from pruning_core import BhpvasError
from pruning_core.uploads import EndedSessionSweeper, UploadSession, sweep_uploads, uploads_root

SESSION_KEY = "_bhpvas_uploads"


@st.cache_resource(show_spinner=False)
def startup_sweep() -> int:
    """Once per server process: remove upload folders of sessions that ended in a crash (older than the TTL)."""
    try:
        return len(sweep_uploads())
    except BhpvasError:
        return 0


@st.cache_resource(show_spinner=False)
def upload_sweeper() -> EndedSessionSweeper:
    return EndedSessionSweeper(uploads_root())


def sweep_ended_uploads() -> None:
    """Remove the upload folders of sessions that ended longer ago than the server keeps a closed
    tab's session for reconnecting (``server.disconnectedSessionTTL``). Runs on every script run."""
    if not runtime.exists():
        return
    grace = float(st.get_option("server.disconnectedSessionTTL") or 120)
    upload_sweeper().sweep(runtime.get_instance().is_active_session, grace)


def upload_session() -> UploadSession:
    """This session's upload folder, removed once the session has ended."""
    ss = st.session_state
    owner = ss.get(SESSION_KEY)
    if not isinstance(owner, UploadSession) or not owner.alive:
        owner = UploadSession(uploads_root())
        ss[SESSION_KEY] = owner
    ctx = get_script_run_ctx()
    if ctx is not None:
        upload_sweeper().track(owner.token, ctx.session_id)
    return owner


def save_upload(raw: bytes, filename: str) -> Path:
    """Keep an uploaded data file in this session's upload folder so its path can go in the URL."""
    return upload_session().save(raw, filename)

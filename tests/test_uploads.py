"""Per-session upload folders (:mod:`pruning_core.uploads`): saving, removal with the session, sweeping."""

from __future__ import annotations

import gc
import os
import time

import pytest

from pruning_core.uploads import UploadSession, check_upload_exists, sweep_uploads


def test_an_upload_folder_is_removed_when_its_session_owner_is_collected(tmp_path):
    owner = UploadSession(tmp_path / "uploads")
    path = owner.save(b"text,label\nfine,1\n", "reviews.csv")
    assert path.read_bytes() == b"text,label\nfine,1\n"
    assert path.parent.parent == owner.folder and path.name == "reviews.csv"
    assert owner.save(b"text,label\nfine,1\n", "reviews.csv") == path, "the same bytes are stored once"
    folder = owner.folder
    del owner
    gc.collect()
    assert not folder.exists()
    assert (tmp_path / "uploads").exists(), "only the session's own folder goes"


def test_two_sessions_do_not_share_upload_folders(tmp_path):
    first, second = UploadSession(tmp_path), UploadSession(tmp_path)
    a = first.save(b"text,label\nx,1\n", "d.csv")
    b = second.save(b"text,label\nx,1\n", "d.csv")
    assert a != b
    first.close()
    assert not a.exists() and b.exists()


def test_sweep_removes_old_upload_folders_and_keeps_fresh_ones(tmp_path, monkeypatch):
    root = tmp_path / "uploads"
    old, fresh, legacy = UploadSession(root), UploadSession(root), root / "0123456789abcdef"
    old_path = old.save(b"a,b\n1,2\n", "old.csv")
    fresh.save(b"a,b\n1,2\n", "fresh.csv")
    legacy.mkdir(parents=True)
    (legacy / "legacy.csv").write_text("a,b\n1,2\n")
    day_and_more = time.time() - 25 * 3600
    for path in [old.folder, *old.folder.rglob("*"), legacy, *legacy.rglob("*")]:
        os.utime(path, (day_and_more, day_and_more))
    assert sorted(sweep_uploads(root, ttl_hours=24)) == sorted([old.folder, legacy])
    assert not old_path.exists() and fresh.folder.exists()
    monkeypatch.setenv("BHPVAS_UPLOAD_TTL_HOURS", "0")
    assert sweep_uploads(root, now=time.time() + 1) == [fresh.folder]


def test_a_vanished_upload_gets_a_clear_message(tmp_path):
    from pruning_core import DataError

    owner = UploadSession(tmp_path / "uploads")
    path = owner.save(b"text,label\nx,1\n", "reviews.csv")
    check_upload_exists(path, tmp_path / "uploads")
    owner.close()
    with pytest.raises(DataError, match="belonged to a session that ended; upload it again"):
        check_upload_exists(path, tmp_path / "uploads")
    check_upload_exists(tmp_path / "elsewhere.csv", tmp_path / "uploads")


def test_sweeper_removes_folders_of_sessions_gone_longer_than_the_grace(tmp_path):
    from pruning_core.uploads import EndedSessionSweeper

    sweeper = EndedSessionSweeper(tmp_path)
    gone, alive, recent = (UploadSession(tmp_path) for _ in range(3))
    for owner in (gone, alive, recent):
        owner.save(b"text,label\nok,positive\n", "data.csv")
    sweeper.track(gone.token, "session-gone", now=1000.0)
    sweeper.track(alive.token, "session-alive", now=1000.0)
    sweeper.track(recent.token, "session-recent", now=1100.0)
    active = {"session-alive"}
    removed = sweeper.sweep(active.__contains__, grace_seconds=120, now=1150.0)
    assert removed == [tmp_path / gone.token]
    assert not gone.folder.exists() and alive.folder.exists() and recent.folder.exists()
    assert sweeper.sweep(active.__contains__, grace_seconds=120, now=1300.0) == [tmp_path / recent.token]
    assert alive.folder.exists() and sweeper.tracked == {alive.token}
    untracked = tmp_path / "from-another-process"
    untracked.mkdir()
    sweeper.sweep(lambda _: False, grace_seconds=0, now=10_000.0)
    assert untracked.exists() and not alive.folder.exists()

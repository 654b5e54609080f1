"""A screenshot lands where a user can find it, and the toast says where, or why not: servers
seldom have the Downloads folder Textual saves to."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_ui import SIZE, notices
from tui_helpers import started, wait_for


async def test_with_no_downloads_folder_it_goes_to_the_current_directory(
    make_console, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DOWNLOAD_DIR", str(tmp_path / "no-such-downloads"))
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await app.run_action("screenshot")
        await wait_for(pilot, lambda: notices(app))
        [saved] = list(here.iterdir())
        assert notices(app)[-1] == f"saved to {saved}"
        assert saved.suffix == ".svg" and "<svg" in saved.read_text()
        assert saved.stat().st_mode & 0o077 == 0  # the user's alone: it shows their data


async def test_when_it_cannot_be_saved_the_toast_says_why(
    make_console, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DOWNLOAD_DIR", str(tmp_path / "no-such-downloads"))
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await app.run_action("screenshot")
        await wait_for(pilot, lambda: notices(app))
        assert notices(app)[-1] == (
            "not saved: no Downloads folder and no current directory to save it in"
        )
        assert not (tmp_path / "no-such-downloads").exists()

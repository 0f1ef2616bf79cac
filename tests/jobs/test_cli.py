"""``plugin-bot submit | jobs | job | cancel | worker | db`` on a SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main

FIELDS = {"id", "state", "phase", "attempts", "created_at", "finished_at", "error"}


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SANDBOX", "none")
    return tmp_path / "data"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, " ".join(out.split())  # rich wraps long lines


def test_job_commands_refuse_a_database_that_was_not_upgraded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["jobs"], ["worker"], ["submit", "a plugin"]):
        code, out = run(capsys, *argv)
        assert code == 2
        assert "the job database is behind this plugin-bot" in out
        assert "run `plugin-bot db upgrade`" in out
    code, out = run(capsys, "db", "status")
    assert code == 1
    assert run(capsys, "db", "upgrade") == (0, "the job database is current (0004)")


def test_submit_list_show_and_cancel_a_job_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "db", "upgrade")
    code, out = run(capsys, "submit", "a weather plugin", "--json")
    assert code == 0
    submitted = json.loads(out)
    assert submitted["state"] == "queued" and submitted["position"] == 1
    job_id = submitted["id"]
    code, out = run(capsys, "jobs", "--json")
    listed = json.loads(out)
    assert [j["id"] for j in listed] == [job_id]
    assert set(listed[0]) >= FIELDS
    assert listed[0]["attempts"] == 0 and listed[0]["finished_at"] is None
    code, out = run(capsys, "job", job_id[:8], "--json")
    shown = json.loads(out)
    assert set(shown) >= FIELDS and shown["position"] == 1
    assert [e["kind"] for e in shown["events"]] == ["submitted"]
    code, out = run(capsys, "cancel", job_id[:8])
    assert (code, out) == (0, f"job {job_id[:8]} is cancelled")
    code, out = run(capsys, "jobs", "--state", "cancelled", "--json")
    cancelled = json.loads(out)
    assert [j["id"] for j in cancelled] == [job_id]
    assert cancelled[0]["finished_at"] is not None
    assert json.loads(run(capsys, "jobs", "--state", "queued", "--json")[1]) == []


def test_submit_over_the_hourly_rate_is_refused_with_when_to_retry(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIMIT_JOBS_PER_HOUR_REQUESTER", "1")
    run(capsys, "db", "upgrade")
    assert run(capsys, "submit", "a plugin")[0] == 0
    code, out = run(capsys, "submit", "another plugin")
    assert code == 1
    assert out.startswith("refused: you already submitted 1 jobs in the last hour; ")
    assert "the next slot frees at 20" in out and out.endswith(" UTC")


def test_an_unknown_job_is_named_in_the_answer(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "db", "upgrade")
    code, out = run(capsys, "job", "deadbeef")
    assert code == 1
    assert out.startswith("no job deadbeef")

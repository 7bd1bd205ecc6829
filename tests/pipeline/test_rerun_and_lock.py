"""Re-running a finished generate never makes it incomplete (even killed midway), and two
generate jobs into one folder cannot interleave: the second stops with one line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from eco_helpers import cli, one_error_line

from memgen.io.dataset import verify
from memgen.io.store import LocalStore

ARGS = ["generate", "--family", "overwrite,discard", "--length", "2048", "--episodes", "40", "--shard-size", "5",
        "--quiet"]


def test_a_killed_rerun_of_a_complete_job_leaves_it_complete(tmp_path):
    out = tmp_path / "ds"
    rc, _, err = cli(*ARGS, "--out", str(out))
    assert rc == 0, err
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for delay in (0.2, 0.5, 0.8, 1.2, 2.0):
        proc = subprocess.Popen([sys.executable, "-m", "memgen.cli", *ARGS, "--out", str(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert verify(out) == [], delay
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_second_job_into_a_folder_being_written_stops_with_one_line(tmp_path):
    out = tmp_path / "ds"
    with LocalStore(out).lock():  # a job is writing there
        rc, _, err = cli(*ARGS, "--out", str(out))
    assert rc == 2
    one_error_line(err, "another memgen job is writing there")
    assert not any(out.iterdir())
    rc, _, err = cli(*ARGS, "--out", str(out))  # the lock went with its holder
    assert rc == 0, err

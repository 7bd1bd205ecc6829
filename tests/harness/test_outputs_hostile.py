"""Outputs never destroy what is already there: ``memgen run --out`` resumes its own file or
refuses another one (never truncates it, server up or down), and an export never opens or
renames over a device, FIFO or socket."""

from __future__ import annotations

import os
import socket
import stat

import pytest
from eco_helpers import cli, one_error_line


def _closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


@pytest.mark.parametrize("content", [b"precious notes, no newline", b"", b"\n\n", b'{"id": "x"}'])
def test_run_never_truncates_a_file_that_is_not_its_own(text_dataset, tmp_path, content):
    out = tmp_path / "notes.txt"
    out.write_bytes(content)
    rc, _, err = cli("run", "--dataset", str(text_dataset), "--openai-base-url", _closed_url(), "--model", "m",
                     "--retries", "0", "--out", str(out), "--quiet", timeout=60)
    assert rc != 0
    one_error_line(err)
    assert out.read_bytes() == content


def test_export_refuses_a_fifo_and_leaves_it_a_fifo(text_dataset, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    rc, _, err = cli("export", str(text_dataset), "--format", "jsonl", "--out", str(fifo), timeout=60)
    assert rc == 2
    one_error_line(err, "not a regular file")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)

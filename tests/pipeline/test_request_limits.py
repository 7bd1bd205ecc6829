"""Every count and size of a generate request has a ceiling checked before anything is planned
or written: one line and exit 2, in well under a second, never gigabytes of memory first."""

from __future__ import annotations

import time

import pytest
from eco_helpers import cli, one_error_line


@pytest.mark.parametrize(("args", "words"), [
    (["--episodes", str(10 ** 12)], "--episodes"),
    (["--episodes", str(2 ** 70)], "--episodes"),
    (["--episodes", "200000", "--shard-size", "1"], "shards"),
    (["--episodes", "5", "--shard-size", "6"], "--shard-size"),
    (["--alpha", "inf"], "--alpha"),
    (["--alpha", "nan"], "--alpha"),
    (["--alpha", "1e-300"], "--alpha"),
    (["--split", "../../x"], "--split"),
    (["--split", "a\x1b[31mb"], "--split"),
])
def test_a_request_beyond_its_ceilings_is_refused_up_front(tmp_path, args, words):
    out = tmp_path / "out"
    t = time.monotonic()
    rc, _, err = cli("generate", "--family", "write", "--length", "256", *args, "--out", str(out), timeout=60)
    assert rc == 2
    one_error_line(err, words)
    assert "\x1b" not in err
    assert not out.exists()
    assert time.monotonic() - t < 30

"""The command line: one clear line and an exit code for every bad input, never a traceback."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from memgen.cli import main


def run(*args):
    p = subprocess.run([sys.executable, "-m", "memgen.cli", *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.parametrize("args, code, words", [
    (["generate", "--family", "bogus", "--out", "{tmp}/o"], 2, "unknown family 'bogus'"),
    (["generate", "--family", "write", "--rendering", "vhs", "--out", "{tmp}/o"], 2, "unknown rendering"),
    (["generate", "--family", "overwrite", "--length", "512", "--keys", "200", "--out", "{tmp}/o"], 2,
     "needs at least"),
    (["generate", "--family", "write", "--episodes", "0", "--out", "{tmp}/o"], 2, "--episodes"),
    (["generate", "--family", "write", "--length", "1000", "--rendering", "chunk", "--out", "{tmp}/o"], 2,
     "multiple of --chunk-size"),
    (["generate", "--family", "write", "--out", "/proc/memgen-cannot-write"], 2, "cannot write"),
    (["generate", "--family", "write", "--depth", "0.9,0.1", "--out", "{tmp}/o"], 2, "--depth"),
    (["verify", "{tmp}/nothing"], 1, "not a memgen dataset"),
])
def test_bad_input_gets_one_line_and_an_exit_code(tmp_path, args, code, words):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    rc, out, err = run(*args)
    assert rc == code, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("memgen: error:") and words in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.arrow"))


def test_generate_verify_show_end_to_end(tmp_path):
    r = CliRunner()
    out = str(tmp_path / "ds")
    res = r.invoke(main, ["generate", "--family", "overwrite,discard", "--rendering", "chunk", "--length", "2048",
                          "--episodes", "3", "--out", out, "--quiet"])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["verify", out])
    assert res.exit_code == 0 and "all checksums match" in res.output
    res = r.invoke(main, ["show", out, "--config", "discard-chunk-2048", "--index", "2"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "delete" in res.output and "discard" in res.output and "evidence" in res.output


def test_help_lists_the_knobs():
    res = CliRunner().invoke(main, ["generate", "--help"])
    for opt in ("--family", "--overwrites", "--distractor-kinds", "--silent-share", "--deletes", "--query-position",
                "--depth", "--spacing", "--chunk-size", "--segments", "--vocab-size"):
        assert opt in res.output

"""A knob no family of the request uses is an error, one that some use is a warning and given
to those only; workers are sized from the cores available, and the command says what it chose."""

from __future__ import annotations

import pytest
from eco_helpers import cli, one_error_line

from memgen.format.errors import UsageError
from memgen.generators.knobs import Knobs
from memgen.pipeline.engines import size_workers
from memgen.pipeline.request import Request, family_plan, validate


def test_a_knob_no_family_uses_is_an_error():
    with pytest.raises(UsageError, match="--deletes does not apply to write.*applies to discard, mixed"):
        validate(Request(families=("write",), lengths=(1024,), knobs=Knobs(deletes=3)))
    rc, out, err = cli("generate", "--family", "write", "--deletes", "3", "--length", "1024", "--out", "/nonexistent/x")
    assert rc == 2
    one_error_line(err, "--deletes does not apply to write")


def test_a_knob_some_families_use_is_a_warning_and_reaches_only_those():
    req = Request(families=("write", "discard"), lengths=(1024,), knobs=Knobs(deletes=3))
    assert validate(req) == ["--deletes applies to discard only; ignored for write"]
    assert family_plan(req, "discard", 1024).deletes == 3
    assert family_plan(req, "write", 1024).deletes == 0


def test_knobs_at_their_default_or_used_by_the_family_pass_silently():
    assert validate(Request(families=("discard",), lengths=(1024,), knobs=Knobs(deletes=1, overwrites=2))) == []
    assert validate(Request(families=("write",), lengths=(1024,), knobs=Knobs(keys=3, queries=2))) == []


@pytest.mark.parametrize("asked, tasks, cores, processes, writer", [
    (1, 10, 2, 1, True),    # one worker and its writer thread fill both cores
    (2, 10, 2, 1, True),    # a second process would only compete for them (0.84x measured)
    (8, 10, 16, 8, True),
    (8, 3, 16, 3, True),    # never more processes than shards
    (4, 10, 1, 1, False),   # one core: no writer thread either
    (None, 10, 64, 1, True),
])
def test_workers_are_sized_from_the_cores_available(asked, tasks, cores, processes, writer):
    plan = size_workers(asked, tasks, cores)
    assert (plan.processes, plan.writer_thread) == (processes, writer)


def test_generate_says_how_it_sized_the_workers(tmp_path):
    rc, out, err = cli("generate", "--family", "write", "--length", "256", "--episodes", "4", "--shard-size", "1",
                       "--workers", "2", "--out", str(tmp_path / "ds"), env={"MEMGEN_CORES": "2"})
    assert rc == 0, err
    assert "shards made by this process with a writer thread (--workers 2, 2 cores available)" in err


def test_a_bad_core_count_in_the_environment_is_one_line(tmp_path):
    rc, _, err = cli("generate", "--family", "write", "--length", "256", "--episodes", "1", "--workers", "2",
                     "--out", str(tmp_path / "ds"), env={"MEMGEN_CORES": "lots"})
    assert rc == 2
    one_error_line(err, "MEMGEN_CORES")

"""A model knob beyond its ceiling is one line and exit 2 before any work (``fixed_state:d=1000000``
was killed for memory)."""

from __future__ import annotations

from eco_helpers import cli, one_error_line


def test_a_fixed_state_wider_than_its_ceiling_is_refused(model_dataset):
    rc, _, err = cli("eval", "--dataset", str(model_dataset), "--model", "fixed_state:d=1000000", "--quiet",
                     timeout=120)
    assert rc == 2
    one_error_line(err, "d must be 1 to 4096")

"""Domains from untrusted places (a dataset's ``domain`` column, ``--domain``, a folder on
``$MEMGEN_TEMPLATE_PATH``): resolved by name only, rendered in jinja2's sandbox, never code."""

from __future__ import annotations

import shutil

import pytest

from memgen.format.errors import UsageError
from memgen.render.text.domain import TEMPLATE_ROOT, load_domain

#: a classic jinja2 escape: from a template global to the os module, then a shell command
ESCAPE = ("Note: the {{{{ key }}}} are in bin {{{{ value }}}}"
          "{{{{ cycler.__init__.__globals__.os.system('touch {}') }}}}.")


def _hostile_domain(tmp_path, name: str, marker) -> object:
    root = tmp_path / "roots"
    shutil.copytree(TEMPLATE_ROOT / "inventory", root / name)
    (root / name / "write.j2").write_text(ESCAPE.format(marker) + "\n")
    return root


def test_a_template_cannot_run_code(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("MEMGEN_TEMPLATE_PATH", str(_hostile_domain(tmp_path, "evil_templates", marker)))
    with pytest.raises(UsageError, match="write.j2"):
        load_domain("evil_templates")
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../inventory", "/tmp/x", "inventory/../travel", "Inventory", "", "a" * 65,
                                  "inventory\n", "in ventory"])
def test_a_domain_is_a_name_not_a_path(name):
    with pytest.raises(UsageError, match="not a path"):
        load_domain(name)


def test_a_domain_folder_that_links_outside_its_root_is_refused(tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    shutil.copytree(TEMPLATE_ROOT / "inventory", outside)
    root = tmp_path / "roots"
    root.mkdir()
    (root / "linked_domain").symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv("MEMGEN_TEMPLATE_PATH", str(root))
    with pytest.raises(UsageError, match="links outside"):
        load_domain("linked_domain")


def test_scoring_a_dataset_whose_domain_column_is_a_path_runs_no_template(tmp_path):
    """A text dataset that names a template folder of its own in its ``domain`` column (and
    passes verify once re-signed): its templates never render; the values it names have no
    surface, which the report says."""
    import json

    import pyarrow as pa

    from memgen.io.atomic import sha256_file
    from memgen.io.card import render_card
    from memgen.io.shards import read_shard, write_shard
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request
    from memgen.scorers.scoring import score

    ds = tmp_path / "ds"
    generate(Request(families=("overwrite",), renderings=("text",), lengths=(1024,), episodes=2, seed=1), ds)
    marker = tmp_path / "pwned"
    shutil.copytree(TEMPLATE_ROOT / "inventory", ds / "evil")
    (ds / "evil" / "write.j2").write_text(ESCAPE.format(marker) + "\n")
    manifest = json.loads((ds / "manifest.json").read_text())
    for entry in (e for c in manifest["configs"].values() for e in c["shards"]):
        path = ds / entry["path"]
        table = read_shard(path, prompt=False)  # as stored: the prompt is rebuilt on read
        table = table.set_column(table.schema.get_field_index("domain"), "domain",
                                 pa.array([str(ds / "evil")] * table.num_rows, pa.string()))
        sha, size = write_shard(path, table)
        entry["sha256"], entry["bytes"] = sha256_file(path), size
    (ds / "manifest.json").write_text(json.dumps(manifest))
    (ds / "README.md").write_text(render_card(manifest))  # re-signed: the card records the manifest's checksum
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": f"overwrite-text-1024-{i:07d}", "qid": 0, "prediction": "x"}) + "\n"
                             for i in range(2)))
    result = score(ds, preds)
    assert not marker.exists()
    assert any("no known surface" in n for n in result.notes)

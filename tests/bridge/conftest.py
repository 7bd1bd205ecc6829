import pytest

pytest.importorskip("torch")
pytest.importorskip("safetensors")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A random 2-layer, 32-dim BERT folder in all-MiniLM-L6-v2's file format."""
    from tiny_bert import write_tiny_bert

    return write_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny-bert")

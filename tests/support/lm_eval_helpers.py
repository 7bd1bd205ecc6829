"""Reading the lm-eval task YAMLs that ``memgen export --format lm-eval`` writes."""

from pathlib import Path

import yaml


class TaskLoader(yaml.SafeLoader):
    """yaml's safe loader that keeps lm-eval's ``!function`` references as strings."""


TaskLoader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def task_yaml(path: Path) -> dict:
    """The task YAML at ``path``, read safely."""
    return yaml.load(path.read_text(), Loader=TaskLoader)  # a SafeLoader: no object construction

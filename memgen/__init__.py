"""memgen: episodes, renderings, models and scorers for memory management in long-context models."""

__version__ = "0.1.0"

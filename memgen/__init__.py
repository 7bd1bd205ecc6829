"""memgen: episodes, renderings, models and scorers for memory management in long-context models."""

__version__ = "0.1.0"

#: Bumped whenever the bytes of any generated output change for the same command.
GENERATOR_VERSION = "4"
#: Bumped whenever columns are renamed, added or retyped.
SCHEMA_VERSION = "3"

"""Versions of the contract, recorded in every manifest."""

#: Bumped whenever the bytes of any generated output change for the same command.
GENERATOR_VERSION = "5"
#: Bumped whenever columns are renamed, added or retyped.
SCHEMA_VERSION = "4"

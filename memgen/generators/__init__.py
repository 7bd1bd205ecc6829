"""Episode families, registered by name (:mod:`memgen.generators.registry`).

A family is a function ``(knobs: Knobs, length: int) -> Plan`` (:mod:`memgen.generators.knobs`)
decorated with :func:`~memgen.generators.registry.register_family`, in a module of its own that
also holds its description for the dataset card; :func:`~memgen.generators.build.build_program`
does the rest.  Adding a family is adding one module and naming it in the import below.
"""

from memgen.generators import (  # noqa: F401  (each module registers its family)
    discard,
    distractor,
    mixed,
    no_write_signal,
    overwrite,
    version,
    write,
)

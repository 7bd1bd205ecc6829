"""The episode IR (DESIGN.md section 3): episodes and programs, the plain reference interpreter
(``naive``), the vectorised ``replay`` and its compiled twin, per-episode random streams and the
compiled-twin mechanism."""

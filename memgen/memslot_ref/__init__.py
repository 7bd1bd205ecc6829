"""The reference hybrid: editable memory slots plus a sparse fallback."""

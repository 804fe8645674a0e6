"""Pure render logic: spec geometry, layout, encoding and compliance rules (no I/O)."""

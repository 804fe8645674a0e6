"""Text the public API accepts: printable, no control characters (PostgreSQL refuses NUL, logs garble the rest)."""

from __future__ import annotations

PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
# Identifiers: ids of specs, uploads, templates, papers, outfits.
IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"

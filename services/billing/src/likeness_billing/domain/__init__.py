"""Pure billing rules: no I/O, no App Store library types."""

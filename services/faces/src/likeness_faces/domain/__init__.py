"""Pure face-analysis logic: result types, geometry and measures, no I/O and no models."""

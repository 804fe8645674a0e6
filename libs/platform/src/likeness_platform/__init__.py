"""Shared runtime for Likeness services."""

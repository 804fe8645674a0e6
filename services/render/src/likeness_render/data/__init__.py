"""Packaged reference data (spec catalog, print media), read with importlib.resources."""

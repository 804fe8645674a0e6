"""Edges of the render service: model runners (and, later, repositories and clients)."""

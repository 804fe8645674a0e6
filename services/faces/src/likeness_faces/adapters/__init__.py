"""Edges of the faces service: model files, model runners and the micro-batcher."""

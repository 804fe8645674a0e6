"""Likeness render service: ID photos, print sheets and portraits."""

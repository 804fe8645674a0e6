"""Likeness faces service: face detection, landmarks, head pose and quality for portraits."""

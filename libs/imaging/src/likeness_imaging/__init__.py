"""Image decoding and encoding shared by ingestion, faces and render."""

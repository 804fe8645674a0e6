"""Likeness admin HTTP API: operators (mTLS certificates with roles) reach the mesh over HTTP/JSON."""

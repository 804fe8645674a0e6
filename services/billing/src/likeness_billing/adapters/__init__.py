"""Edges of the billing service: App Store verification and API, PostgreSQL."""

"""Alerts that reach a person, by email and outgoing webhook: see docs/alerts.md."""

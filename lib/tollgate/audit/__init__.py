"""Workflow audit: find what an attacker could use in CI configuration files."""

"""GitHub Actions audit rules. Each module registers its rules on import."""

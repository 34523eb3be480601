"""OIDC to cloud credentials: AWS, GCP, Azure and Vault, on GitHub and GitLab."""

"""The GitLab templates under gitlab-ci-local."""

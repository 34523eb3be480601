"""GitHub Actions: the expression language and the workflow/action model rules read."""

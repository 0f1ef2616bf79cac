"""Writes to GitHub: reactions, comments, the pull request. Each one is idempotent."""

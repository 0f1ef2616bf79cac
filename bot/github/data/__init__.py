"""Reads from GitHub: repository, config file, collaborator permission, comments."""

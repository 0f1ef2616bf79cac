"""Checks before anything runs: triggers (in the request), permissions and repo config
(in the dispatcher)."""

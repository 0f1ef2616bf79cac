"""Test doubles that speak the real wire protocols (HTTP), not Python mocks."""

"""Helpers the tests import by name: plain functions and classes, no fixtures (those are in the
conftest.py files)."""

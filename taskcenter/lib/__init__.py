"""Helpers of the core that know nothing about tasks: encryption keys, database outages."""

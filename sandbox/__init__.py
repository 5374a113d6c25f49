"""A sandbox social platform: a real HTTP server that plays a twitter-like API for the demo and
the tests (see ``sandbox.platform``)."""

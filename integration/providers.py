"""The integration tasks table talks to no platform itself: the kinds its rows run do, through
their own apps' providers."""

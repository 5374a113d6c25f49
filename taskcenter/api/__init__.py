"""The canonical REST API at /api/v1/ (the shape of seed 003)."""

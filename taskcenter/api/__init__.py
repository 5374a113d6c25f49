"""The canonical REST API at /api/v1/ (the shape of the XGet scraper API)."""

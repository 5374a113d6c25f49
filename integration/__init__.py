"""The integration tasks table as a dialect: /api/integration/tasks (no models of its own)."""

"""Task Center."""

# Kept equal to pyproject.toml's [project] version; workers record it in the registry.
__version__ = "0.1.0"

"""Django's SQLite backend, with a write lock taken by a short spin instead of SQLite's sleeps.

See ``base.py``.
"""

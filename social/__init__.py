"""Social networks, in pure Python: no Flask and no database in this package."""

"""Foundations: database, settings, run bookkeeping, the file loader, the source contract."""

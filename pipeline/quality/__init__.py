"""Declarative quality rules compiled to SQL, and the score formulas."""

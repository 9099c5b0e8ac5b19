"""Tallinn: prompt libraries as code."""

__version__ = "0.1.0"

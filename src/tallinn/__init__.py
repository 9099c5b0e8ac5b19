"""Tallinn: prompt libraries as code."""

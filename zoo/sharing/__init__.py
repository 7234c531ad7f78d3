"""Versions out and in: publish (a run -> a zoo version), push / pull (Hub or fsspec URL)."""

"""Tests of the pure domain modules."""

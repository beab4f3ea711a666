"""Tests of the services tier over a real database and bus."""

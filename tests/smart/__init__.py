"""Tests for the pure smart-charging maths (spec/smart-charging.md §4, §5, §6.4, §7)."""

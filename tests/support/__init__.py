"""Helpers shared by the tests: servers and fakes that stand in at the seams."""

"""Tests of crawler/."""

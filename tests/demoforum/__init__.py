"""Tests of demoforum/."""

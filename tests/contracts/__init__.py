"""Tests of contracts/."""

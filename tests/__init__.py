"""The test suite: tests/<package>/test_<module>.py per project module, shared helpers in tests/helpers/."""

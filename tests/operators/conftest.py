"""The operator tests use the `emulator` fixture of tests/conftest.py."""

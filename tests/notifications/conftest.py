"""The notifier tests use the `emulator` fixture of tests/conftest.py."""

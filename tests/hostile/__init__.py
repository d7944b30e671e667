"""The bad-input suite's kinds, one module per family; importing the package registers
them all (see support.kind). tests/test_hostile_input.py runs them."""

from tests.hostile import arguments, config, console, env_files, journal, logs, secret_files  # noqa: F401

"""The engine: one run object, plans run step by step under the lock, write-ahead intents, undo."""

"""The test suite: a package, so every test module has a unique name (tests.<area>.<module>)."""

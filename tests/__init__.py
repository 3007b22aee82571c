"""The test suite: a package, so every test module has a unique dotted name (tests.<area>.<module>)."""

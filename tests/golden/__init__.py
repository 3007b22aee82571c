"""Golden files of what leaves the device, and the test that compares against them."""

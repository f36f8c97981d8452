"""A plug-in module that fails while it is imported (tests/test_plugins.py: bad input, exit 2)."""
raise RuntimeError("this plug-in is broken on purpose")

"""An example mpigc plug-in package (docs/extending.md): one scheme, registered by an entry point."""

__version__ = "0.1.0"

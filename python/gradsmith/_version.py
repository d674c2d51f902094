"""The package version, in its own module so that modules below the package (saving) can name it
without importing gradsmith itself."""
__version__ = "0.1.0"

"""The ``bordewatch`` command line: thin click commands over the library."""

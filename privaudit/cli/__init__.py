"""The ``privaudit`` command line: a thin shell around the core (see :mod:`privaudit.cli.app`)."""

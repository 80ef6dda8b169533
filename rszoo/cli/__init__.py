"""The ``rszoo`` command line (see :mod:`rszoo.cli.main`)."""

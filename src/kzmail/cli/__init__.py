"""The command line: parse arguments, call a service, print its result, map errors to exits.

The only place that uses typer and rich. `kzmail.cli.main:main` is the entry point.
"""

"""`python -m kzmail`: the same as the `kzmail` command."""

from kzmail.cli.main import main

main()

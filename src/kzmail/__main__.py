"""`python -m kzmail`: the same as the `kzmail` command."""

from .cli import main

main()

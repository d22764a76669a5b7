"""`python -m updatesync`: the same as the `updatesync` command."""

from updatesync.cli import main

main()

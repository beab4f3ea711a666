"""`python -m voltline` runs the command-line interface."""

from voltline.cli import main

main()

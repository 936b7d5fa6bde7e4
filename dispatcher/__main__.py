"""``python -m dispatcher``: the CLI, for process managers that run module paths."""

from dispatcher.cli import main

main()

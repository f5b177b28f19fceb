"""``python -m jobs.cli``: the `render` command (how `render BOOK --workers N` starts its extra workers)."""

from jobs.cli import main

main()

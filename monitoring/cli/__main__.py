"""`python -m monitoring.cli`."""

from monitoring.cli.entry import run

run()

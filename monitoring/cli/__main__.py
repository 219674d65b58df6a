"""`python -m monitoring.cli`."""

from monitoring.cli import main

raise SystemExit(main())

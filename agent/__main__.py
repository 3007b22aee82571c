"""Run the command-line interface with `python -m agent`."""

from agent.cli import main

raise SystemExit(main())

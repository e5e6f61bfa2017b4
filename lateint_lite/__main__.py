"""``python -m lateint_lite`` runs the CLI."""

from .cli import main

raise SystemExit(main())

"""``python -m culturegan`` (also what ``torchrun -m culturegan`` runs)."""

from culturegan.cli import main

raise SystemExit(main())

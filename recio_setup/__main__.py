"""`python -m recio_setup`: the same as the `recio-setup` console script."""

from __future__ import annotations

import sys

from recio_setup.cli.app import main

sys.exit(main())

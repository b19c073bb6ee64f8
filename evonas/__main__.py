"""``python -m evonas`` is the ``evonas`` command."""

from __future__ import annotations

import sys

from evonas.cli import main

sys.exit(main())

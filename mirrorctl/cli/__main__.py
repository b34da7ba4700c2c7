"""`python -m mirrorctl.cli`: the console script without an installed entry point."""

import sys

from mirrorctl.cli import main

sys.exit(main())

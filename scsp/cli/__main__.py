"""`python -m scsp.cli`: the `scsp` command line."""

import sys

from scsp.cli.main import main

sys.exit(main())

"""`python -m unseen`: the same as the `unseen` command."""

import sys

from unseen.cli import main

sys.exit(main())

"""``python -m mammo_helpers.run``: the ``mammo-run`` command line."""

import sys

from mammo_helpers.run.cli import main

if __name__ == "__main__":
    sys.exit(main())

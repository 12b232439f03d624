"""``python -m disaggctl.verify {verify,fabric-check} ...`` (also wired into ``python -m disaggctl``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

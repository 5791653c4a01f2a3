"""``python -m mrmoe_sklearn.compare``: run the comparison's command line."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())

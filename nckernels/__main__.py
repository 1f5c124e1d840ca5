"""``python -m nckernels run|sweep``: see :mod:`nckernels.experiments.cli`."""
import sys

from .experiments.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())

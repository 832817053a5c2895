"""The `swarmlab` command line: the top layer.

Exit codes: 0 the run ended normally (also by a cap, a kill or a tripwire), 2 bad spec or
arguments, 1 an infrastructure failure. User mistakes get one line, never a traceback.
"""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]

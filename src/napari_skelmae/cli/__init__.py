"""The ``skelmae`` command line: the same core as the widgets, for terminals and GPU servers.

One module per group of commands (``tracks``: info, view; ``pretrain``; ``analysis``: embed,
cluster, classify; ``demo``); this module builds
the parser and turns our errors into one line on stderr. ``python -m napari_skelmae.cli`` and
``torchrun ... -m napari_skelmae.cli pretrain ...`` run :func:`main`.

Errors on bad input print one line naming the file and the problem (exit status 2), never a
traceback; ``--debug`` shows the traceback when one is wanted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

from .. import __version__
from ..errors import SkelmaeError, SkelmaeWarning
from .analysis import add_analysis_parsers
from .demo import add_demo_parser
from .pretrain import add_pretrain_parser
from .tracks import add_tracks_parsers, tracks_summary  # noqa: F401  (tracks_summary: API)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skelmae",
        description="napari-skelmae: pose tracks to behaviour with masked skeleton models.",
    )
    parser.add_argument("--version", action="version", version=f"napari-skelmae {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    add_tracks_parsers(sub)
    add_pretrain_parser(sub)
    add_analysis_parsers(sub)
    add_demo_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our warnings as one readable line; library warnings keep their usual form."""
    if issubclass(category, SkelmaeWarning):
        print(f"skelmae: warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="skelmae: %(message)s")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.simplefilter("ignore", DeprecationWarning)  # libraries' own, not the user's
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except SkelmaeError as e:
        if args.debug:
            raise
        print(f"skelmae: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("skelmae: aborted", file=sys.stderr)
        return 130

"""The ``neurosim`` command line: parse, run the command, turn bad input into one message.

The commands live one group per module (``info``: models, chips; ``train``; ``lower``;
``simulate``: simulate, compare; ``report``; ``bench``; ``demo``), shared steps in ``common``
and the parser in ``parser``; a command's module is imported only when that command runs.

Bad input (unknown names, missing files, impossible sizes, models that do not fit a chip) is
reported as one clear message on stderr with exit status 2, never a traceback.
"""
from __future__ import annotations

import sys

from neurosim.cli.config import ConfigError, apply_config
from neurosim.cli.parser import build_parser

__all__ = ["build_parser", "main"]


def _is_mapping_error(e: Exception) -> bool:
    """``chips.mapping.MappingError``, without importing chips.mapping (numpy, networkx) for
    commands that never map: if it was never imported, nothing raised one."""
    mapping = sys.modules.get("chips.mapping")
    return mapping is not None and isinstance(e, mapping.MappingError)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:                                       # --config RUN.toml: its flags come first
        argv = apply_config(parser, argv)
    except ConfigError as e:
        command = next((a for a in argv if not a.startswith("-")), "")
        print(f"neurosim {command}: error: {e}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except BrokenPipeError:                    # output piped into `head` and the like
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (KeyError, ValueError, TypeError, FileNotFoundError) as e:
        if _is_mapping_error(e):
            print(f"neurosim {args.command}: error: {e}\nhint: the scaled chips tianjic-x16 "
                  f"and speck-xl fit the zoo's tiny models", file=sys.stderr)
            return 2
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"neurosim {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

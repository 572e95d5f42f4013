"""What every subcommand's flags share: absl-style booleans, numeric ranges, the help layout, and
the parser that reports a bad flag in one line.

Numeric flags: every ``int``/``float`` flag of every subcommand is parsed by ``int_flag`` or
``float_flag``, which check a documented range while the command line is parsed, before any file is
opened: ``--max_seq_length 3000000000`` is ``wwm-fast create: error: argument --max_seq_length:
must be an integer in [5, 8192], got 3000000000``, exit status 2. The bounds and their reasons are
in wwm_fast/_limits.py (shared with ``create_instances``); probabilities are checked as open or
closed intervals, and NaN and infinities are refused by every float flag.
"""

from __future__ import annotations

import argparse
import math
import sys

from .._limits import MAX_DUPE_FACTOR, MAX_SEED, MAX_SEQ_LENGTH, MAX_THREADS

__all__ = ["parse_bool", "add_bool_flag", "int_flag", "float_flag", "threads_flag",
           "Formatter", "Parser", "MAX_SEQ_LENGTH", "MAX_THREADS", "MAX_DUPE_FACTOR", "MAX_SEED"]

_TRUE = ("1", "true", "yes", "y", "on")
_FALSE = ("0", "false", "no", "n", "off")


def parse_bool(text: str) -> bool:
    t = str(text).strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_bool_flag(parser, name: str, default: bool, help: str) -> None:
    """``--name``, ``--name=true|false`` and absl's ``--noname``, like Google's flags.

    ``--name`` followed by a word that is not a boolean (a file name) leaves that word alone
    (``Parser`` rewrites it to ``--name=true``): ``inspect --stats FILE`` reads FILE.
    """
    dest = name.lstrip("-")
    parser.add_argument(f"--{dest}", dest=dest, nargs="?", const=True, default=default,
                        type=parse_bool, metavar="{true,false}", help=help)
    parser.add_argument(f"--no{dest}", dest=dest, action="store_false",
                        help=argparse.SUPPRESS)


class _Range:
    """An argparse ``type`` that parses a number and checks it against a range."""

    def __init__(self, kind, lo, hi, lo_open=False, hi_open=False, also=()):
        self.kind, self.lo, self.hi = kind, lo, hi
        self.lo_open, self.hi_open, self.also = lo_open, hi_open, tuple(also)
        self.__name__ = kind.__name__  # argparse names the type in "invalid int value"

    def describe(self) -> str:
        """``[5, 8192]``, ``(0, 1)``, ``-1 or [1, 256]``: shown in help and errors."""
        rng = (f"{'(' if self.lo_open else '['}{_num(self.lo)}, "
               f"{_num(self.hi)}{')' if self.hi_open else ']'}")
        return " or ".join([*(_num(a) for a in self.also), rng])

    def _expected(self) -> str:
        """``an integer in [5, 8192]``, ``-1 or an integer in [1, 256]``."""
        noun = "an integer" if self.kind is int else "a number"
        rng = self.describe().rsplit(" or ", 1)[-1]
        return " or ".join([*(_num(a) for a in self.also), f"{noun} in {rng}"])

    def __call__(self, text: str):
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(
                f"must be {self._expected()}, got {text!r}") from None
        if value in self.also:
            return value
        ok = (self.kind is int or math.isfinite(value)) and (
            (self.lo < value if self.lo_open else self.lo <= value)
            and (value < self.hi if self.hi_open else value <= self.hi))
        if not ok:
            raise argparse.ArgumentTypeError(f"must be {self._expected()}, got {text}")
        return value


def _num(x) -> str:
    if isinstance(x, int) and x >= 2 ** 31 - 1:
        exp = x.bit_length() - 1
        return f"2**{exp}" if x == 2 ** exp else f"2**{exp + 1} - 1" if x == 2 ** (exp + 1) - 1 \
            else f"{x:,}"
    return f"{x:g}" if isinstance(x, float) else str(x)


def int_flag(lo: int, hi: int, *, also=()) -> _Range:
    """``type=`` of an integer flag in ``[lo, hi]`` (``also``: extra accepted values, e.g. -1)."""
    return _Range(int, lo, hi, also=also)


def float_flag(lo: float, hi: float, *, lo_open=False, hi_open=False) -> _Range:
    """``type=`` of a finite number flag in the range (``*_open``: that end excluded)."""
    return _Range(float, lo, hi, lo_open, hi_open)


def threads_flag() -> _Range:
    """Threads or processes: -1 (every core) or 1..MAX_THREADS."""
    return int_flag(1, MAX_THREADS, also=(-1,))


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Help lines that end with the default and the range, each once.

    The default is shown when there is one to show (not for required flags, nor a None default,
    which means "chosen at run time" and is explained in the help text), and not when the help
    text already says it.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        extras = []
        default = action.default
        if (action.option_strings and not action.required and default is not None
                and default is not argparse.SUPPRESS and "default" not in text.lower()
                and not isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            extras.append("default: %(default)s")
        describe = getattr(action.type, "describe", None)
        if describe is not None:
            extras.append("range " + describe().replace("%", "%%"))
        if extras:
            text = f"{text} ({'; '.join(extras)})" if text else "; ".join(extras)
        return text


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prog: error: ...``, exit status 2, as
    argparse), and whose absl booleans never swallow the next word."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(self._bools_keep_next_word(args), namespace)

    def _bools_keep_next_word(self, args):
        """``--flag WORD`` -> ``--flag=true WORD`` for a boolean flag when WORD is not a boolean:
        argparse's ``nargs="?"`` would take WORD as the flag's value (``--stats FILE``)."""
        bools = {s for a in self._actions if a.type is parse_bool for s in a.option_strings}
        if not bools:
            return args
        out = []
        for i, arg in enumerate(args):
            if arg == "--":
                out.extend(args[i:])
                break
            nxt = args[i + 1] if i + 1 < len(args) else None
            if arg in bools and nxt is not None and not nxt.startswith("-") \
                    and nxt.strip().lower() not in _TRUE + _FALSE:
                arg += "=true"
            out.append(arg)
        return out

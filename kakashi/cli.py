"""`python -m kakashi COMMAND ...`: each command lives in the module that does the work.

A command module provides `configure(parser)` (its arguments) and `run(args) -> int`; its
run() checks every argument and output path first (kakashi.arguments), before any work.
User errors (missing or bad files, bad values) end with one line on stderr and exit 1.
SIGTERM and SIGINT (Ctrl-C) unwind the command like an error, so temporary files are
removed and no output is half-written; then Ctrl-C exits 130 and SIGTERM ends the process
by that signal.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys

COMMANDS = {
    "synth": ("kakashi.synth", "write the embedded synthetic dataset (songs + dances)"),
    "build": ("kakashi.pipeline.build", "build a dataset of clips from dance videos (manifest or folder)"),
    "train": ("kakashi.experiment", "train one model with one loss"),
    "sweep": ("kakashi.sweep", "train every loss through notebooks/04_train.ipynb"),
    "choreograph": ("kakashi.generate", "dance to a song: mp4 with the music, BVH, npz, contact sheet"),
    "evaluate": ("kakashi.evaluation", "dance metrics of generated dances"),
}


class UserError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


class Terminated(BaseException):
    """Raised by the SIGTERM handler so that cleanup (finally blocks, context managers) runs."""


def _terminate(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def _sigterm_unwinds():
    """While the command runs, SIGTERM raises Terminated (in the main thread only)."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _die_by(signum: int) -> int:
    """End this process by `signum` with its default action (the shell then reports the signal);
    returns 128 + signum when the default action does not end it."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return 128 + signum


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kakashi", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    program = argv is None  # run as the program (python -m kakashi), not called from Python
    argv = sys.argv[1:] if argv is None else argv
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        # Only the chosen command's module is imported (they pull in torch, mediapipe, ...).
        if argv and argv[0] == name:
            importlib.import_module(module).configure(p)
    args = parser.parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        with _sigterm_unwinds():
            return int(module.run(args) or 0)
    except (UserError, FileNotFoundError, ValueError, PermissionError, OSError) as e:
        print(f"kakashi {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"kakashi {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"kakashi {args.command}: terminated", file=sys.stderr)
        return _die_by(signal.SIGTERM) if program else 128 + signal.SIGTERM


def _one_line(error: BaseException) -> str:
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return " | ".join(lines) or type(error).__name__

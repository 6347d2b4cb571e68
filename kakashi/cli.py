"""`python -m kakashi COMMAND ...`: each command lives in the module that does the work.

A command module provides `configure(parser)` (its arguments) and `run(args) -> int`.
User errors (missing or bad files, bad values) end with one line on stderr and exit 1.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "synth": ("kakashi.synth", "write the embedded synthetic dataset (songs + dances)"),
    "build": ("kakashi.pipeline.build", "build a dataset of clips from dance videos (manifest or folder)"),
    "train": ("kakashi.experiment", "train one model with one loss"),
    "sweep": ("kakashi.sweep", "train every loss through notebooks/04_train.ipynb"),
    "choreograph": ("kakashi.generate", "dance to a song: mp4 with the music, BVH, npz"),
    "evaluate": ("kakashi.evaluation", "dance metrics of generated dances"),
}


class UserError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kakashi", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        # Only the chosen command's module is imported (they pull in torch, mediapipe, ...).
        if argv and argv[0] == name:
            importlib.import_module(module).configure(p)
    args = parser.parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except (UserError, FileNotFoundError, ValueError, PermissionError, OSError) as e:
        print(f"kakashi {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"kakashi {args.command}: interrupted", file=sys.stderr)
        return 130

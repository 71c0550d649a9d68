"""What every bulk command shares: progress (a rich bar on a terminal, plain lines otherwise),
files that appear whole or not at all, and Ctrl-C that never leaves a write half done."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

# Exit status of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130
# Plain progress: one line per this fraction of a known total, or per this many items.
PLAIN_STEP = 0.1
PLAIN_EVERY = 1_000


class Bar:
    """Progress of one command, phase after phase ("validate", "write", ...).

    On a terminal a rich progress bar; otherwise one plain line per tenth of the total (or
    per 1,000 items when the total is unknown) on stdout, e.g.
    `stores import: validate 2000/20000`.
    """

    def __init__(self, name: str, *, tty: bool | None = None) -> None:
        self.name = name
        self.tty = sys.stdout.isatty() if tty is None else tty
        self._rich: RichProgress | None = None
        self._task: Any = None
        self._phase: str | None = None
        self._next_line = 0

    def __enter__(self) -> Bar:
        if self.tty:
            self._rich = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(),
            )
            self._rich.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()

    def __call__(self, phase: str, done: int, total: int | None = None) -> None:
        """Report `done` of `total` in a phase (the signature of geo.stores.Progress)."""
        if phase != self._phase:
            self._phase = phase
            self._next_line = 0
            if self._rich is not None:
                self._task = self._rich.add_task(f"{self.name}: {phase}", total=total)
        if self._rich is not None:
            self._rich.update(self._task, completed=done, total=total)
            return
        if done < self._next_line and done != total:
            return
        if done == 0 and total:
            self._next_line = max(1, int(total * PLAIN_STEP))
            click.echo(f"{self.name}: {phase} 0/{total}")
            return
        click.echo(f"{self.name}: {phase} {done}/{total if total is not None else '?'}")
        step = max(1, int(total * PLAIN_STEP)) if total else PLAIN_EVERY
        self._next_line = (done // step + 1) * step


class Interrupts:
    """Ctrl-C (SIGINT) while a command runs: outside a shielded section it stops the command
    at once (KeyboardInterrupt); inside one it is remembered and the section finishes, so a
    write that must be whole (one import's transactions, one account) is never cut in two."""

    def __init__(self) -> None:
        self.pending = False
        self._depth = 0
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)

    def _handler(self, signum: int, frame: Any) -> None:
        if self._depth:
            if not self.pending:
                click.echo("interrupt: finishing the write in progress first", err=True)
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextmanager
    def shielded(self) -> Iterator[None]:
        """Defer Ctrl-C until the block is over."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def enter_shield(self) -> None:
        """Start a shielded section that lasts until the command ends (see shielded)."""
        self._depth += 1


@contextmanager
def atomic_output(path: Path, *, mode: int | None = None) -> Iterator[IO[str]]:
    """Open a temporary file next to `path` for writing; rename it to `path` when the block
    ends normally, remove it when the block raises (Ctrl-C included). Readers of `path`
    therefore see the old file or the whole new one, never a part.

    The file gets `mode`, or by default what a new file gets under the process's umask.
    """
    path = Path(path)
    directory = path.resolve().parent
    if not directory.is_dir():
        raise click.ClickException(f"no directory {str(directory)!r} for {str(path)!r}")
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def interrupted(message: str) -> None:
    """End a command stopped by Ctrl-C: say what state it left, exit with status 130."""
    click.echo(f"interrupted: {message}", err=True)
    click.get_current_context().exit(INTERRUPTED)

"""A semaphore shared by every process on one machine: N slot files, each held with ``flock``.

Why files rather than Dask or Prefect concurrency: a machine runs several Dask worker processes
(and perhaps a ``leadshop check`` beside them), and what runs out is the machine's CPU and memory,
which neither knows about. The kernel drops an ``flock`` when its holder exits, even by SIGKILL,
so a crashed worker never leaves a slot taken. Waiting polls with non-blocking locks and
``asyncio.sleep``, so a waiting coroutine neither blocks its event loop nor resists cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

DEFAULT_POLL_SECONDS = 0.1


class FileSemaphore:
    """At most ``slots`` holders of ``name`` at once among all processes using ``directory``."""

    def __init__(
        self, directory: Path, name: str, slots: int, poll_seconds: float = DEFAULT_POLL_SECONDS
    ) -> None:
        if slots < 1:
            raise ValueError("a semaphore needs at least one slot")
        self.paths = [directory / f"{name}.{index}.lock" for index in range(slots)]
        self.poll_seconds = poll_seconds

    def _try_take(self) -> tuple[int, int] | None:
        """The slot taken and its open file, or None when every slot is held."""
        self.paths[0].parent.mkdir(parents=True, exist_ok=True)
        for index, path in enumerate(self.paths):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return index, fd
        return None

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[int]:
        """Wait for a free slot and keep it for the ``async with`` body; yields its index.

        Each call opens its own file, and ``flock`` belongs to the open file, so coroutines and
        threads of one process exclude each other exactly as processes do.
        """
        while (taken := self._try_take()) is None:
            await asyncio.sleep(self.poll_seconds)
        index, fd = taken
        try:
            yield index
        finally:
            os.close(fd)  # closing the last descriptor of the open file releases the lock

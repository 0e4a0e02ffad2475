"""Long work in the background: the job object that labeling and training share.

A job runs its work in a thread so a notebook stays responsive, and exposes ``state``
(queued/running/done/failed/cancelled), ``cancel()``, ``wait()`` and ``result()``. What the work
finished before a cancel or a failure is the work's own business to keep (the label store, the
training checkpoint); the job only reports how it ended.
"""

from __future__ import annotations

import threading
import time

STATES = ("queued", "running", "done", "failed", "cancelled")


class JobCancelled(RuntimeError):
    """The job was cancelled before it finished; what it had finished is kept."""


class Job:
    """Base of background jobs. Subclasses implement :meth:`_execute`, which returns the result,
    checks :attr:`cancelled` between units of work and raises :class:`JobCancelled` to stop."""

    def __init__(self, description: str):
        self.description = description
        self.state = "queued"
        self.error: BaseException | None = None
        self.wall_time_s = 0.0
        self._result = None
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}: {self.state}>"

    @property
    def cancelled(self) -> bool:
        """Whether a cancel was asked for."""
        return self._cancel.is_set()

    def start(self, background: bool = True):
        """Run the work, in a daemon thread when ``background`` (returns at once), else here."""
        if background:
            self._thread = threading.Thread(target=self._run, name=self.description, daemon=True)
            self._thread.start()
        else:
            self._run()
        return self

    def cancel(self) -> None:
        """Ask the work to stop at its next check; what it finished is kept."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (or ``timeout`` s pass); True if it ended."""
        return self._finished.wait(timeout)

    def result(self, timeout: float | None = None):
        """The result (blocks until done). Raises the :class:`JobCancelled` the work stopped with,
        the work's exception if it failed, TimeoutError on timeout. Interrupting the wait (Ctrl-C)
        cancels the job."""
        try:
            if not self.wait(timeout):
                raise TimeoutError(f"{self.description} not finished after {timeout} s")
        except KeyboardInterrupt:
            self.cancel()
            raise
        if self.state in ("cancelled", "failed"):
            raise self.error
        return self._result

    def _execute(self):
        raise NotImplementedError

    def _run(self) -> None:
        self.state = "running"
        start = time.perf_counter()
        try:
            self._result = self._execute()
            self.state = "done"
        except JobCancelled as err:
            self.error = err
            self.state = "cancelled"
        except BaseException as err:  # the job records why it stopped; result() re-raises it
            self.error = err
            self.state = "failed"
        finally:
            self.wall_time_s = time.perf_counter() - start
            self._finished.set()

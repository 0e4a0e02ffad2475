"""Long work in the background: the one job object that labeling, training and the panels' analyses share.

A :class:`Job` runs its work in a thread so a notebook stays responsive. Its life:

- ``queued``: made, not started; ``waiting``: in a :class:`JobQueue` behind other jobs;
- ``running``; then one of ``done``, ``failed``, ``cancelled``.

Whoever follows a job subscribes to it (:meth:`Job.subscribe`): listeners are called with ``(job, event)``
from the worker thread, on ``"start"``, ``"stage"`` (a stage of the work begins or ends), ``"progress"``
(a unit of work is finished) and ``"end"`` (after the final state is set). :meth:`Job.add_done_callback`
is the ``"end"`` event alone. :meth:`Job.progress` says where the work stands in the same words for every
kind of job. What was finished before a cancel or a failure is :attr:`Job.partial` (the best weights of a
training run, the labels computed so far), so nothing already done is lost.
"""

from __future__ import annotations

import math
import threading
import time
import types
import weakref
from collections.abc import Callable

STATES = ("queued", "waiting", "running", "done", "failed", "cancelled")
FINAL_STATES = ("done", "failed", "cancelled")
EVENTS = ("start", "stage", "progress", "end")


class JobCancelled(RuntimeError):
    """The job was cancelled before it finished; what it had finished is kept (:attr:`Job.partial`)."""


class Job:
    """A piece of background work with a state, listeners, cancel, a result and a partial result.

    Give the work as ``work`` (a function of no arguments returning the result), or subclass and implement
    :meth:`_execute`. Long work checks :attr:`cancelled` between units and raises :class:`JobCancelled` to
    stop; it calls :meth:`_emit` with ``"stage"`` or ``"progress"`` to tell listeners.

    Attributes
    ----------
    description
        What the job does, in a few words.
    name
        The name its owner keeps it under (e.g. a run's name in the workbench); the description by default.
    state
        One of :data:`STATES`.
    error
        The exception the work stopped with (a :class:`JobCancelled` when cancelled), else None.
    partial
        What was finished before a cancel or a failure, when the work keeps something; else None.
    log
        Lines of text about the job (start, stages, end, errors), oldest first, with the time of day.
    wall_time_s
        Seconds the work ran (0 until it ends).
    """

    def __init__(self, description: str, work: Callable[[], object] | None = None, name: str | None = None):
        self.description = description
        self.name = name or description
        self.state = "queued"
        self.error: BaseException | None = None
        self.partial = None
        self.log: list[str] = []
        self.wall_time_s = 0.0
        self.started_at: float | None = None  # time.monotonic() when the work began
        self._work = work
        self._result = None
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list = []
        self._ending = False  # set with the final state: listeners from then on are told "end" at once
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}: {self.state}>"

    # ----------------------------------------------------------------------------- what it is now
    @property
    def cancelled(self) -> bool:
        """Whether a cancel was asked for."""
        return self._cancel.is_set()

    @property
    def finished(self) -> bool:
        """Whether the job has reached a final state (done, failed or cancelled)."""
        return self.state in FINAL_STATES

    def progress(self) -> dict:
        """Where the work stands: ``stage``, ``done`` and ``total`` units (``total`` None when unknown),
        ``unit`` (e.g. ``"epoch"``, ``"label"``), ``seconds_per_unit`` and ``eta_s`` (the rest of the stage at
        the pace so far). Subclasses fill in their units; the base knows only the state."""
        return {"stage": None, "done": 0, "total": None, "unit": None, "seconds_per_unit": math.nan, "eta_s": math.nan}

    @staticmethod
    def _pace(done: int, total: int | None, since: float | None) -> tuple[float, float]:
        """Seconds per unit and seconds left, at the pace of ``done`` units since ``since`` (monotonic)."""
        if not done or since is None:
            return math.nan, math.nan
        pace = (time.monotonic() - since) / done
        return pace, (pace * max(total - done, 0) if total else math.nan)

    # ----------------------------------------------------------------------------- control
    def begin(self, background: bool = True, queue: JobQueue | None = None) -> Job:
        """Start the job now (in a thread when ``background``), or through ``queue`` when one is given (it then
        waits for the jobs before it); returns it. What every ``wb.train``, ``wb.label`` and ``wb.improve``
        does with their ``background`` and ``queue`` arguments."""
        if queue is None:
            return self.start(background)
        if not background:
            raise ValueError("a queued job starts when its turn comes: it needs background=True")
        return queue.submit(self)

    def start(self, background: bool = True) -> Job:
        """Run the work, in a daemon thread when ``background`` (returns at once), else here."""
        with self._lock:
            if self.state == "cancelled":  # cancelled while it waited in a queue: it never runs
                return self
            if self.state not in ("queued", "waiting"):
                raise RuntimeError(f"{self.description}: cannot start a job that is {self.state}")
            self.state = "running"
        if background:
            self._thread = threading.Thread(target=self._run, name=self.description, daemon=True)
            self._thread.start()
        else:
            self._run()
        return self

    def cancel(self) -> None:
        """Ask the work to stop at its next check; what it finished is kept. A job that has not started
        (queued or waiting) ends at once as cancelled."""
        self._cancel.set()
        with self._lock:
            not_started = self.state in ("queued", "waiting")
            if not_started:  # claimed here, so that start() cannot run it any more; the error first, for result()
                self.error = JobCancelled(f"{self.description} was cancelled before it started")
                self.state = "cancelled"
        if not_started:  # told outside the lock: listeners may take other locks (a queue's)
            self._end("cancelled", self.error)
        elif not self.finished:
            self.write("stop asked: finishing the unit of work now running")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended and its listeners have been told (True), or ``timeout`` s pass."""
        return self._finished.wait(timeout)

    def result(self, timeout: float | None = None):
        """The result (blocks until done). Raises the :class:`JobCancelled` the work stopped with, the work's
        exception if it failed, TimeoutError on timeout. Interrupting the wait (Ctrl-C) cancels the job."""
        if not self.finished:
            try:
                if not self.wait(timeout):
                    raise TimeoutError(f"{self.description} not finished after {timeout} s")
            except KeyboardInterrupt:
                self.cancel()
                raise
        if self.state in ("cancelled", "failed"):
            raise self.error
        return self._result

    # ----------------------------------------------------------------------------- listeners
    def subscribe(self, listener: Callable[[Job, str], None]) -> None:
        """Call ``listener(job, event)`` on every event (:data:`EVENTS`), from the thread that works. Bound
        methods are held weakly, so a panel that is gone stops listening. A listener that raises is logged and
        does not stop the work or the other listeners. Subscribing to a job that has ended calls the listener
        with ``"end"`` at once."""
        ref = weakref.WeakMethod(listener) if isinstance(listener, types.MethodType) else listener
        with self._lock:
            ended = self._ending
            if not ended:
                self._listeners.append(ref)
        if ended:
            self._call(listener, "end")

    def add_done_callback(self, fn: Callable[[Job], None]) -> None:
        """Call ``fn(job)`` once the job has ended (in the worker thread, after the final state is set;
        at once if it has ended already)."""
        self.subscribe(lambda job, event: fn(job) if event == "end" else None)

    def write(self, line: str) -> None:
        """Add a line to :attr:`log` (the last 500 are kept)."""
        with self._lock:
            self.log.append(f"{time.strftime('%H:%M:%S')}  {line}")
            del self.log[:-500]

    def _emit(self, event: str) -> None:
        with self._lock:
            refs = list(self._listeners)
        self._tell(refs, event)

    def _tell(self, refs: list, event: str) -> None:
        for ref in refs:
            fn = ref() if isinstance(ref, weakref.WeakMethod) else ref
            if fn is not None:
                self._call(fn, event)
        with self._lock:  # forget the listeners that are gone
            self._listeners = [r for r in self._listeners if not isinstance(r, weakref.WeakMethod) or r() is not None]

    def _call(self, fn, event: str) -> None:
        try:
            fn(self, event)
        except Exception as error:  # one broken view must not stop the work or the other views
            self.write(f"a listener failed on {event!r}: {type(error).__name__}: {error}")

    # ----------------------------------------------------------------------------- the work
    def _execute(self):
        if self._work is None:
            raise NotImplementedError(f"{type(self).__name__} has no work: pass work= or implement _execute")
        return self._work()

    def _summary(self) -> str:
        """The log line when the job is done."""
        return f"done in {self.wall_time_s:.1f} s"

    def _run(self) -> None:
        self.started_at = time.monotonic()
        self.write(f"started: {self.description}")
        self._emit("start")
        state, error = "done", None
        try:
            self._result = self._execute()
        except JobCancelled as err:
            state, error = "cancelled", err
        except BaseException as err:  # the job records why it stopped; result() re-raises it
            state, error = "failed", err
        self.wall_time_s = time.monotonic() - self.started_at
        self._end(state, error)

    def _end(self, state: str, error: BaseException | None) -> None:
        with self._lock:  # the error before the state, so that result() never sees one without the other
            self.error, self.state = error, state
        if state == "done":
            self.write(self._summary())
        elif state == "cancelled":
            kept = "; what it finished is kept" if self.partial is not None else ""
            self.write(f"cancelled after {self.wall_time_s:.1f} s{kept}")
        else:
            self.write(f"failed: {type(error).__name__}: {error}")
        with self._lock:  # from here a new listener is told at once, so none falls between the two
            self._ending = True
            refs, self._listeners = self._listeners, []
        try:
            self._tell(refs, "end")
        finally:
            self._finished.set()


class JobQueue:
    """Jobs that run one after another: :meth:`submit` starts a job at once when none of the queue's jobs is
    running, else leaves it ``waiting`` until those before it have ended. A waiting job that is cancelled
    never starts."""

    def __init__(self):
        self.jobs: list[Job] = []
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<JobQueue: {[j.state for j in self.jobs]}>"

    def submit(self, job: Job) -> Job:
        """Start ``job`` now or when the jobs before it have ended; returns it. A job already running (started
        elsewhere) is only counted: the jobs submitted after it wait for it too."""
        with self._lock:
            self.jobs.append(job)
            busy = any(j.state == "running" or j.state == "waiting" for j in self.jobs if j is not job)
            job.add_done_callback(self._next)
            with job._lock:  # a cancel from another thread must not be overwritten
                if job.state != "queued":
                    return job
                if busy:
                    job.state = "waiting"
            if busy:
                job.write("waiting for the jobs before it")
                return job
        return job.start()

    def _next(self, _ended: Job) -> None:
        with self._lock:
            self.jobs = [j for j in self.jobs if not j.finished]
            if any(j.state == "running" for j in self.jobs):
                return
            waiting = next((j for j in self.jobs if j.state == "waiting"), None)
            if waiting is None:
                return
            waiting.start()


def callback_list(callbacks) -> list:
    """The callbacks a user passed (None, one function, or several) as a list, each checked to be callable."""
    if callbacks is None:
        return []
    items = [callbacks] if callable(callbacks) else list(callbacks)
    for c in items:
        if not callable(c):
            raise TypeError(f"a callback must be a function of one record, got {c!r}")
    return items

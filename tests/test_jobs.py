"""The one job lifecycle (workbench.jobs): states, listeners, the done-callback, the partial result, the queue."""

import threading

import pytest

from workbench.jobs import Job, JobCancelled, JobQueue


def test_done_callback_runs_in_the_worker_after_the_final_state_is_set():
    seen = []
    job = Job("sum", lambda: sum(range(10)))
    job.add_done_callback(lambda j: seen.append((j.state, j.result(), threading.current_thread().name)))
    job.start()
    assert job.wait(10)
    assert seen == [("done", 45, "sum")]  # the worker thread, and the result already readable
    late = []
    job.add_done_callback(lambda j: late.append(j.state))  # on an ended job: called at once
    assert late == ["done"] and "done in" in job.log[-1]


def test_events_come_in_order_and_a_broken_listener_stops_nothing():
    events = []

    def work():
        job._emit("stage")
        job._emit("progress")
        return 1

    job = Job("work", work)
    job.subscribe(lambda j, event: events.append(event))
    job.subscribe(lambda j, event: 1 / 0)
    job.start(background=False)
    assert events == ["start", "stage", "progress", "end"] and job.result() == 1
    assert any("ZeroDivisionError" in line for line in job.log)


def test_a_failure_keeps_the_partial_result_and_reraises():
    def work():
        job.partial = [1, 2]  # what was finished before it broke
        raise RuntimeError("the third unit broke")

    job = Job("units", work)
    job.start(background=False)
    assert job.state == "failed" and job.partial == [1, 2]
    with pytest.raises(RuntimeError, match="third unit"):
        job.result()


def test_cancel_reaches_the_work_and_ends_it_as_cancelled():
    started = threading.Event()

    def work():
        started.set()
        while not job.cancelled:
            job._cancel.wait(0.01)
        job.partial = "half"
        raise JobCancelled("stopped")

    job = Job("loop", work)
    job.start()
    assert started.wait(10)
    job.cancel()
    assert job.wait(10) and job.state == "cancelled" and job.partial == "half"
    with pytest.raises(JobCancelled):
        job.result()


def test_a_queue_runs_jobs_one_after_another_and_skips_cancelled_ones():
    order, gate = [], threading.Event()
    first = Job("first", lambda: (gate.wait(10), order.append("first")))
    second = Job("second", lambda: order.append("second"))
    third = Job("third", lambda: order.append("third"))
    queue = JobQueue()
    for job in (first, second, third):
        queue.submit(job)
    assert first.state == "running" and second.state == third.state == "waiting"
    second.cancel()
    assert second.state == "cancelled" and second.wait(1)  # ended at once, listeners told
    gate.set()
    assert third.wait(10)
    assert order == ["first", "third"] and first.state == third.state == "done"
    with pytest.raises(RuntimeError, match="cannot start"):
        first.start()


def test_a_queue_counts_a_job_started_elsewhere():
    gate = threading.Event()
    elsewhere = Job("elsewhere", lambda: gate.wait(10)).start()
    queue = JobQueue()
    queue.submit(elsewhere)
    behind = queue.submit(Job("behind", lambda: "ran"))
    assert behind.state == "waiting"
    gate.set()
    assert behind.wait(10) and behind.result() == "ran"


def test_a_listener_that_comes_while_the_end_is_told_is_told_too():
    late = []
    job = Job("quick", lambda: 1)
    # subscribing from inside another listener's "end": the moment a panel following a fast job would subscribe
    job.add_done_callback(lambda j: j.add_done_callback(lambda jj: late.append(jj.state)))
    job.start(background=False)
    assert late == ["done"]


def test_a_cancelled_job_stays_cancelled_when_submitted_and_result_says_why():
    job = Job("never", lambda: 1)
    job.cancel()
    assert job.state == "cancelled" and isinstance(job.error, JobCancelled)
    JobQueue().submit(job)
    assert job.state == "cancelled"
    with pytest.raises(JobCancelled):
        job.result()
    with pytest.raises(ValueError, match="background"):
        Job("queued", lambda: 1).begin(background=False, queue=JobQueue())

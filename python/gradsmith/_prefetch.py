"""Ordered read-ahead on a few daemon threads: what keeps the next batches of a PyDataset (image
decoding, resizing, augmentation) being made while the current one trains.

``ordered(tasks, workers, depth)`` runs the zero-argument callables of the iterator ``tasks`` on
``workers`` threads, at most ``depth`` ahead of the consumer, and yields their results in the order
of ``tasks``. The tasks are taken from ``tasks`` in the consumer's thread, one at a time, so whatever
their making does in order (random draws, counters) happens in order. An exception in a task is
raised in the consumer, when its result is due. When the generator ends, is closed or is collected
(fit returned, raised or was interrupted), the threads are told to stop, tasks not started are
dropped and the threads are joined: none outlives the epoch.
"""
import collections
import threading

__all__ = ["ordered", "THREAD_NAME"]

THREAD_NAME = "gradsmith-prefetch"
_STOP = object()


class _Future:
    __slots__ = ("fn", "done", "value", "error")

    def __init__(self, fn):
        self.fn = fn
        self.done = threading.Event()
        self.value = self.error = None

    def result(self):
        while not self.done.wait(0.5):  # a timed wait: Ctrl-C reaches the consumer
            pass
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        value, self.value = self.value, None
        return value


class _Pool:
    def __init__(self, workers):
        self._cond = threading.Condition()
        self._queue = collections.deque()
        self._stopping = False
        self._threads = [threading.Thread(target=self._work, name=f"{THREAD_NAME}-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def submit(self, fn):
        fut = _Future(fn)
        with self._cond:
            self._queue.append(fut)
            self._cond.notify()
        return fut

    def _work(self):
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                fut = self._queue.popleft()
            try:
                fut.value = fut.fn()
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                fut.error = e
            fut.fn = None
            fut.done.set()

    def shutdown(self):
        with self._cond:
            self._stopping = True
            self._queue.clear()
            self._cond.notify_all()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join()


def ordered(tasks, workers, depth):
    workers = max(1, int(workers))
    depth = max(1, int(depth))
    pool = None
    pending = collections.deque()
    it = iter(tasks)
    try:
        more = True
        while True:
            while more and len(pending) < depth:
                try:
                    fn = next(it)
                except StopIteration:
                    more = False
                    break
                if pool is None:
                    pool = _Pool(min(workers, depth))
                pending.append(pool.submit(fn))
            if not pending:
                return
            yield pending.popleft().result()
    finally:
        pending.clear()
        if pool is not None:
            pool.shutdown()

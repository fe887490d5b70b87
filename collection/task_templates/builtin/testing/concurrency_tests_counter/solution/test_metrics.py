import sys
import threading
import time
import unittest

from metrics import Counter


class CounterTest(unittest.TestCase):
    def test_increment(self):
        counter = Counter()
        counter.increment()
        counter.increment(by=5)
        self.assertEqual(counter.value, 6)

    def test_observers_see_each_value(self):
        counter = Counter()
        seen = []
        counter.subscribe(seen.append)
        counter.increment()
        counter.increment(2)
        self.assertEqual(seen, [1, 3])


class CounterConcurrencyTest(unittest.TestCase):
    def setUp(self):
        self.interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads as often as possible

    def tearDown(self):
        sys.setswitchinterval(self.interval)

    def test_no_increment_is_lost_under_contention(self):
        counter = Counter()
        # A slow exporter releases the GIL mid-increment: without the lock, other
        # threads read the same old value and updates are lost every run.
        counter.subscribe(lambda value: time.sleep(0))

        def work():
            for _ in range(300):
                counter.increment()

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(counter.value, 8 * 300)

    def test_observers_see_strictly_increasing_values(self):
        counter = Counter()
        seen = []
        counter.subscribe(lambda value: (time.sleep(0), seen.append(value)))
        threads = [
            threading.Thread(target=lambda: [counter.increment() for _ in range(200)])
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(seen, list(range(1, 801)))


if __name__ == "__main__":
    unittest.main()

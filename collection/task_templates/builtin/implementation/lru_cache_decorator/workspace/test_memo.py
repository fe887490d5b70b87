import threading
import unittest

from memo import CacheInfo, lru_cache


class LruCacheTest(unittest.TestCase):
    def setUp(self):
        self.calls = []

        @lru_cache(maxsize=2)
        def square(x, power=2):
            """Square a number."""
            self.calls.append((x, power))
            return x**power

        self.square = square

    def test_results_are_cached(self):
        self.assertEqual(self.square(3), 9)
        self.assertEqual(self.square(3), 9)
        self.assertEqual(self.calls, [(3, 2)])
        self.assertEqual(self.square.cache_info(), CacheInfo(1, 1, 2, 1))

    def test_the_least_recently_used_result_is_evicted(self):
        self.square(1)
        self.square(2)
        self.square(1)  # 2 is now the least recently used
        self.square(3)
        self.calls.clear()
        self.square(1)
        self.square(3)
        self.assertEqual(self.calls, [])
        self.square(2)
        self.assertEqual(self.calls, [(2, 2)])
        self.assertEqual(self.square.cache_info().currsize, 2)

    def test_keyword_arguments_are_part_of_the_key(self):
        self.assertEqual(self.square(2, power=3), 8)
        self.assertEqual(self.square(2), 4)
        self.assertEqual(self.square(2, power=3), 8)
        self.assertEqual(self.calls, [(2, 3), (2, 2)])

    def test_cache_clear(self):
        self.square(4)
        self.square.cache_clear()
        self.assertEqual(self.square.cache_info(), CacheInfo(0, 0, 2, 0))
        self.square(4)
        self.assertEqual(len(self.calls), 2)

    def test_unhashable_arguments_raise_type_error(self):
        with self.assertRaises(TypeError):
            self.square([1, 2])

    def test_the_wrapper_looks_like_the_function(self):
        self.assertEqual(self.square.__name__, "square")
        self.assertEqual(self.square.__doc__, "Square a number.")

    def test_concurrent_calls(self):
        @lru_cache(maxsize=16)
        def double(x):
            return 2 * x

        errors = []

        def work(offset):
            for i in range(2000):
                value = (i + offset) % 40
                if double(value) != 2 * value:
                    errors.append(value)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        info = double.cache_info()
        self.assertEqual(errors, [])
        self.assertLessEqual(info.currsize, 16)
        self.assertEqual(info.hits + info.misses, 8 * 2000)


if __name__ == "__main__":
    unittest.main()

import unittest

from ttl_cache import TTLCache


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class TTLCacheTest(unittest.TestCase):
    def setUp(self):
        self.clock = FakeClock()
        self.cache = TTLCache(ttl=10, clock=self.clock)

    def test_get_before_expiry(self):
        self.cache.set("a", 1)
        self.clock.now = 9.99
        self.assertEqual(self.cache.get("a"), 1)

    def test_expires_at_ttl(self):
        self.cache.set("a", 1)
        self.clock.now = 10
        self.assertIsNone(self.cache.get("a"))
        self.assertEqual(self.cache.get("a", "gone"), "gone")

    def test_missing_key_gives_the_default(self):
        self.assertEqual(self.cache.get("nope", 0), 0)

    def test_setting_again_restarts_the_clock(self):
        self.cache.set("a", 1)
        self.clock.now = 8
        self.cache.set("a", 2)
        self.clock.now = 15
        self.assertEqual(self.cache.get("a"), 2)

    def test_len_counts_live_entries_only(self):
        self.cache.set("a", 1)
        self.clock.now = 5
        self.cache.set("b", 2)
        self.assertEqual(len(self.cache), 2)
        self.clock.now = 12
        self.assertEqual(len(self.cache), 1)
        self.clock.now = 20
        self.assertEqual(len(self.cache), 0)

    def test_falsy_values_are_cached(self):
        self.cache.set("zero", 0)
        self.assertEqual(self.cache.get("zero", "missing"), 0)


if __name__ == "__main__":
    unittest.main()

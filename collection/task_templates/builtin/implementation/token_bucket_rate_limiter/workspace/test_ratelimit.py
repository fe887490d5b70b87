import unittest

from ratelimit import RateLimiter, TokenBucket


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class TokenBucketTest(unittest.TestCase):
    def setUp(self):
        self.clock = FakeClock()
        self.bucket = TokenBucket(rate=2, capacity=5, clock=self.clock)

    def test_a_full_bucket_allows_a_burst_of_capacity(self):
        self.assertEqual([self.bucket.allow() for _ in range(6)], [True] * 5 + [False])

    def test_tokens_refill_at_the_rate(self):
        for _ in range(5):
            self.bucket.allow()
        self.clock.now += 0.5
        self.assertTrue(self.bucket.allow())
        self.assertFalse(self.bucket.allow())
        self.clock.now += 1.0
        self.assertTrue(self.bucket.allow(cost=2))

    def test_never_more_than_capacity(self):
        self.clock.now += 1000
        self.assertEqual([self.bucket.allow() for _ in range(6)], [True] * 5 + [False])

    def test_a_refused_request_takes_nothing(self):
        for _ in range(4):
            self.bucket.allow()
        self.assertFalse(self.bucket.allow(cost=3))
        self.assertTrue(self.bucket.allow(cost=1))

    def test_a_cost_above_capacity_is_an_error(self):
        with self.assertRaises(ValueError):
            self.bucket.allow(cost=6)

    def test_wait_time(self):
        self.assertEqual(self.bucket.wait_time(), 0.0)
        for _ in range(5):
            self.bucket.allow()
        self.assertAlmostEqual(self.bucket.wait_time(), 0.5)
        self.assertAlmostEqual(self.bucket.wait_time(cost=3), 1.5)
        self.clock.now += 0.25
        self.assertAlmostEqual(self.bucket.wait_time(), 0.25)

    def test_a_clock_going_backwards_adds_no_tokens(self):
        for _ in range(5):
            self.bucket.allow()
        self.clock.now -= 50
        self.assertFalse(self.bucket.allow())


class RateLimiterTest(unittest.TestCase):
    def test_keys_have_separate_buckets(self):
        clock = FakeClock()
        limiter = RateLimiter(rate=1, capacity=2, clock=clock)
        self.assertEqual([limiter.allow("a") for _ in range(3)], [True, True, False])
        self.assertTrue(limiter.allow("b"))
        clock.now += 1
        self.assertTrue(limiter.allow("a"))


if __name__ == "__main__":
    unittest.main()

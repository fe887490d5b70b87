import unittest

import prices


class QuoteTest(unittest.TestCase):
    def test_prices(self):
        self.assertEqual(prices.quote("ab", 2), 390)
        self.assertEqual(prices.quote("ab", 100), 17550)

    def test_the_memo_stays_bounded(self):
        for quantity in range(10_000):
            prices.quote("widget", quantity)
        self.assertLessEqual(prices.cache_size(), prices.MAX_ENTRIES)

    def test_recent_quotes_stay_cached(self):
        computed = []
        original = prices._compute

        def counting(sku, quantity):
            computed.append(quantity)
            return original(sku, quantity)

        prices._compute = counting
        try:
            for quantity in range(1000):
                prices.quote("gadget", quantity)
            computed.clear()
            for quantity in range(1000 - prices.MAX_ENTRIES // 2, 1000):
                prices.quote("gadget", quantity)
            self.assertEqual(computed, [])
        finally:
            prices._compute = original


if __name__ == "__main__":
    unittest.main()

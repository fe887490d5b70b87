import unittest
from datetime import date

from dates import add_business_days


class BusinessDaysTest(unittest.TestCase):
    def test_within_a_week(self):
        self.assertEqual(add_business_days(date(2024, 5, 1), 2), date(2024, 5, 3))

    def test_over_a_weekend(self):
        self.assertEqual(add_business_days(date(2024, 5, 3), 1), date(2024, 5, 6))
        self.assertEqual(add_business_days(date(2024, 5, 3), 5), date(2024, 5, 10))

    def test_zero_days(self):
        self.assertEqual(add_business_days(date(2024, 5, 4), 0), date(2024, 5, 4))


if __name__ == "__main__":
    unittest.main()

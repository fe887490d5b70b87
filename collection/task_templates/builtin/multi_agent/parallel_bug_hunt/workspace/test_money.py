import unittest

from money import split


class SplitTest(unittest.TestCase):
    def test_even_split(self):
        self.assertEqual(split(90, 3), [30, 30, 30])

    def test_extra_cents_go_to_the_first_people(self):
        self.assertEqual(split(100, 3), [34, 33, 33])
        self.assertEqual(split(5, 4), [2, 1, 1, 1])

    def test_shares_add_up(self):
        for total in range(0, 200, 7):
            for people in range(1, 8):
                self.assertEqual(sum(split(total, people)), total)

    def test_people_must_be_positive(self):
        with self.assertRaises(ValueError):
            split(100, 0)


if __name__ == "__main__":
    unittest.main()

import unittest

from dupes import find_duplicates


class Counted:
    """An item that counts how often it is compared for equality."""

    comparisons = 0

    def __init__(self, value):
        self.value = value

    def __hash__(self):
        return hash(self.value)

    def __eq__(self, other):
        Counted.comparisons += 1
        return self.value == other.value


class FindDuplicatesTest(unittest.TestCase):
    def test_reports_each_duplicate_once_in_second_occurrence_order(self):
        self.assertEqual(find_duplicates([3, 1, 3, 2, 1, 3, 3]), [3, 1])

    def test_no_duplicates(self):
        self.assertEqual(find_duplicates([1, 2, 3]), [])
        self.assertEqual(find_duplicates([]), [])


class FindDuplicatesPerformanceTest(unittest.TestCase):
    """Counts equality comparisons instead of timing, so it never flakes."""

    def test_comparisons_grow_linearly(self):
        items = [Counted(i) for i in range(500)] + [Counted(i) for i in range(0, 500, 2)]
        Counted.comparisons = 0
        self.assertEqual(len(find_duplicates(items)), 250)
        self.assertLessEqual(Counted.comparisons, 4 * len(items))


if __name__ == "__main__":
    unittest.main()

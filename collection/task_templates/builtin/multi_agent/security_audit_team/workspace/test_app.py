import unittest

from app import disk_usage


class DiskUsageTest(unittest.TestCase):
    def test_reports_a_size(self):
        self.assertTrue(disk_usage("."))


if __name__ == "__main__":
    unittest.main()

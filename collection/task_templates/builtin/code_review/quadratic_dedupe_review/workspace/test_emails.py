import unittest

from emails import unique_addresses


class UniqueAddressesTest(unittest.TestCase):
    def test_duplicates_are_dropped_case_insensitively(self):
        addresses = ["Ann@example.com", "bob@example.com ", "ann@EXAMPLE.com", "bob@example.com"]
        self.assertEqual(unique_addresses(addresses), ["Ann@example.com", "bob@example.com"])

    def test_empty(self):
        self.assertEqual(unique_addresses([]), [])


if __name__ == "__main__":
    unittest.main()

import unittest

from api import list_items


class ListItemsTest(unittest.TestCase):
    def test_total(self):
        self.assertEqual(list_items()["total"], 95)


if __name__ == "__main__":
    unittest.main()

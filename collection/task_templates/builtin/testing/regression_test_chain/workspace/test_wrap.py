import unittest

from wrap import word_wrap


class WordWrapTest(unittest.TestCase):
    def test_empty_text(self):
        self.assertEqual(word_wrap("", 10), [])


if __name__ == "__main__":
    unittest.main()

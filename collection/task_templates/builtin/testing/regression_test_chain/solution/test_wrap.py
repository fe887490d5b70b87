import unittest

from wrap import word_wrap


class WordWrapTest(unittest.TestCase):
    def test_empty_text(self):
        self.assertEqual(word_wrap("", 10), [])

    def test_the_last_line_is_kept(self):
        # Regression test for BUG.md: the last line was dropped.
        self.assertEqual(word_wrap("the quick brown fox", 10), ["the quick", "brown fox"])
        self.assertEqual(word_wrap("hello", 10), ["hello"])


if __name__ == "__main__":
    unittest.main()

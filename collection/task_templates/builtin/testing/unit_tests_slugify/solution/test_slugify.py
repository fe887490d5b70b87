import unittest

from slugify import slugify


class SlugifyTest(unittest.TestCase):
    def test_lowercases_and_joins_words_with_dashes(self):
        self.assertEqual(slugify("Hello World"), "hello-world")

    def test_strips_accents(self):
        self.assertEqual(slugify("Héllo, Wörld!"), "hello-world")

    def test_punctuation_and_spaces_separate_words_once(self):
        self.assertEqual(slugify("  Rock -- & -- Roll!!  "), "rock-roll")

    def test_digits_are_kept(self):
        self.assertEqual(slugify("Top 10 Tips"), "top-10-tips")

    def test_cut_to_max_length(self):
        self.assertEqual(slugify("a" * 80), "a" * 50)
        self.assertEqual(slugify("abc def", max_length=5), "abc-d")

    def test_no_dash_is_left_at_the_end_after_cutting(self):
        self.assertEqual(slugify("hello world", max_length=6), "hello")

    def test_nothing_to_keep(self):
        self.assertEqual(slugify("!!!"), "")


if __name__ == "__main__":
    unittest.main()

"""Property tests: hundreds of generated inputs (seeded, so failures reproduce)."""

import random
import re
import unittest
from itertools import pairwise

from rle import decode, encode

ALPHABET = "ab c"


def random_text(rng):
    """Text made of runs, some of them long (runs of 10+ need multi-digit counts)."""
    return "".join(rng.choice(ALPHABET) * rng.randint(1, 15) for _ in range(rng.randint(0, 8)))


class RunLengthProperties(unittest.TestCase):
    def setUp(self):
        self.rng = random.Random(20240501)

    def test_decode_inverts_encode(self):
        for _ in range(500):
            text = random_text(self.rng)
            self.assertEqual(decode(encode(text)), text)

    def test_the_encoding_is_canonical(self):
        for _ in range(500):
            text = random_text(self.rng)
            runs = re.findall(r"(\d+)(\D)", encode(text))
            self.assertEqual("".join(f"{n}{c}" for n, c in runs), encode(text))
            self.assertTrue(all(int(n) > 0 for n, _ in runs))
            chars = [c for _, c in runs]
            self.assertTrue(all(a != b for a, b in pairwise(chars)), text)

    def test_text_with_a_digit_is_refused(self):
        for _ in range(200):
            text = random_text(self.rng)
            at = self.rng.randint(0, len(text))
            text = text[:at] + self.rng.choice("0123456789") + text[at:]
            with self.assertRaises(ValueError):
                encode(text)

    def test_empty_text(self):
        self.assertEqual(encode(""), "")
        self.assertEqual(decode(""), "")


if __name__ == "__main__":
    unittest.main()

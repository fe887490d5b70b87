import unittest

from temperature import celsius_to_fahrenheit, fahrenheit_to_celsius


class ConversionTest(unittest.TestCase):
    def test_fahrenheit_to_celsius(self):
        self.assertEqual(fahrenheit_to_celsius(212), 100)
        self.assertEqual(fahrenheit_to_celsius(32), 0)
        self.assertEqual(fahrenheit_to_celsius(-40), -40)

    def test_round_trip(self):
        for celsius in (-10, 0, 21.5, 100):
            self.assertAlmostEqual(fahrenheit_to_celsius(celsius_to_fahrenheit(celsius)), celsius)


if __name__ == "__main__":
    unittest.main()

import unittest

from sessions import dump_session, load_session


class SessionTest(unittest.TestCase):
    def test_round_trip(self):
        data = {"user": "ann", "admin": False, "cart": [1, 2]}
        self.assertEqual(load_session(dump_session(data)), data)


if __name__ == "__main__":
    unittest.main()

import unittest

import users


class UsersTest(unittest.TestCase):
    def test_find_users_by_name(self):
        conn = users.connect()
        users.add_user(conn, "ann", "ann@example.com")
        users.add_user(conn, "bob", "bob@example.com")
        self.assertEqual(users.find_users(conn, "ann"), [(1, "ann", "ann@example.com")])
        self.assertEqual(users.find_users(conn, "nobody"), [])


if __name__ == "__main__":
    unittest.main()

import sys
import threading
import time
import unittest

from bank import Account, transfer


class TransferTest(unittest.TestCase):
    def setUp(self):
        self.interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)

    def tearDown(self):
        sys.setswitchinterval(self.interval)

    def test_a_transfer_moves_money(self):
        a, b = Account(1, 100), Account(2, 0)
        transfer(a, b, 30)
        self.assertEqual((a.balance, b.balance), (70, 30))

    def test_insufficient_funds(self):
        a, b = Account(1, 10), Account(2, 0)
        with self.assertRaises(ValueError):
            transfer(a, b, 11)
        self.assertEqual((a.balance, b.balance), (10, 0))

    def test_opposite_transfers_do_not_deadlock(self):
        a, b = Account(1, 1000), Account(2, 1000)

        def spin(source, target):
            for _ in range(2000):
                transfer(source, target, 1)

        threads = [
            threading.Thread(target=spin, args=(a, b), daemon=True),
            threading.Thread(target=spin, args=(b, a), daemon=True),
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 1.0
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.assertFalse(any(t.is_alive() for t in threads), "transfers deadlocked")
        self.assertEqual(a.balance + b.balance, 2000)


if __name__ == "__main__":
    unittest.main()

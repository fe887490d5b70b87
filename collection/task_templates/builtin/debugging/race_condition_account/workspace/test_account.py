import sys
import threading
import unittest

from account import Account


def run_threads(target, count=8):
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class AccountTest(unittest.TestCase):
    def setUp(self):
        self.interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads as often as possible

    def tearDown(self):
        sys.setswitchinterval(self.interval)

    def test_a_single_deposit(self):
        account = Account(10)
        account.deposit(5)
        self.assertEqual(account.balance, 15)

    def test_concurrent_deposits_are_not_lost(self):
        for _ in range(3):
            account = Account()

            def deposit_many(account=account):
                for _ in range(200):
                    account.deposit(1)

            run_threads(deposit_many)
            self.assertEqual(account.balance, 8 * 200)
            self.assertEqual(len(account.history), 8 * 200)

    def test_concurrent_withdrawals_never_overdraw(self):
        account = Account(100)
        refused = []

        def withdraw_many():
            for _ in range(50):
                try:
                    account.withdraw(1)
                except ValueError:
                    refused.append(1)

        run_threads(withdraw_many)
        self.assertEqual(account.balance, 0)
        self.assertEqual(len(refused), 8 * 50 - 100)


if __name__ == "__main__":
    unittest.main()

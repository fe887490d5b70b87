"""A bank account shared by the payment worker threads."""

import threading
import time


class Account:
    def __init__(self, balance=0):
        self.balance = balance
        self.history = []
        self._lock = threading.Lock()

    def deposit(self, amount):
        with self._lock:
            current = self.balance
            self._audit("deposit", amount)
            self.balance = current + amount

    def withdraw(self, amount):
        with self._lock:
            current = self.balance
            if amount > current:
                raise ValueError("insufficient funds")
            self._audit("withdraw", amount)
            self.balance = current - amount

    def _audit(self, kind, amount):
        time.sleep(0)  # stands in for the audit-log write, which releases the GIL
        self.history.append((kind, amount))

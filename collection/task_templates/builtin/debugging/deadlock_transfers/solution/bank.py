"""Transfers between accounts, each guarded by its own lock."""

import threading
import time


class Account:
    def __init__(self, number, balance):
        self.number = number
        self.balance = balance
        self.lock = threading.Lock()


def transfer(source, target, amount):
    """Move `amount` from `source` to `target` atomically."""
    # Always lock the lower account number first, so two opposite transfers
    # can never each hold the lock the other one waits for.
    first, second = sorted((source, target), key=lambda account: account.number)
    with first.lock:
        time.sleep(0)  # looks up the exchange rate (releases the GIL)
        with second.lock:
            if source.balance < amount:
                raise ValueError("insufficient funds")
            source.balance -= amount
            target.balance += amount

"""Hidden check: behaviour is unchanged (golden outputs from the original code)."""

import importlib.util
import inspect  # noqa: F401
import os
import pathlib
import sys

sys.path.insert(0, os.getcwd())
sys.dont_write_bytecode = True  # keep checks/ free of __pycache__


def original(name):
    """The module as it was before the refactoring (kept in checks/original/)."""
    path = pathlib.Path(__file__).resolve().parent / "original" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"original_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


import mailer  # noqa: E402
import notifier  # noqa: E402


class FakeMailer:
    def __init__(self):
        self.sent = []

    def send(self, sender, recipient, subject, body):
        self.sent.append((sender, recipient, subject, body))


before = original("notifier")
mailer.SmtpMailer.sent.clear()
expected = [before.OrderNotifier().order_shipped(7, "a@example.com")]
expected.append(before.OrderNotifier("ops@example.com").order_shipped(8, "b@example.com"))
expected_sent = list(mailer.SmtpMailer.sent)
mailer.SmtpMailer.sent.clear()
got = [notifier.OrderNotifier().order_shipped(7, "a@example.com")]
got.append(notifier.OrderNotifier("ops@example.com").order_shipped(8, "b@example.com"))
if got != expected or mailer.SmtpMailer.sent != expected_sent:
    sys.exit("the default OrderNotifier no longer sends the same mail through SMTP")

mailer.SmtpMailer.sent.clear()
fake = FakeMailer()
subject = notifier.OrderNotifier(mailer=fake).order_shipped(9, "c@example.com")
if fake.sent != [
    ("shop@example.com", "c@example.com", subject, expected_sent[0][4].replace("7", "9"))
]:
    sys.exit(f"an injected mailer is not used: {fake.sent}")
if mailer.SmtpMailer.sent:
    sys.exit("OrderNotifier still talks to SMTP when given a mailer")
print("golden ok")

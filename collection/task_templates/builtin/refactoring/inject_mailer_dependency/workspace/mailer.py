"""The SMTP client (in this sandbox it records what it would send)."""


class SmtpMailer:
    sent = []

    def __init__(self, host):
        self.host = host

    def send(self, sender, recipient, subject, body):
        SmtpMailer.sent.append((self.host, sender, recipient, subject, body))

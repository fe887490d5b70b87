"""Order notifications."""

from mailer import SmtpMailer


class OrderNotifier:
    def __init__(self, sender="shop@example.com", mailer=None):
        self.sender = sender
        self.mailer = mailer if mailer is not None else SmtpMailer(host="smtp.example.com")

    def order_shipped(self, order_id, customer_email):
        subject = f"Order {order_id} has shipped"
        body = f"Good news! Order {order_id} is on its way."
        self.mailer.send(self.sender, customer_email, subject, body)
        return subject

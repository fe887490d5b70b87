"""Order notifications."""

from mailer import SmtpMailer


class OrderNotifier:
    def __init__(self, sender="shop@example.com"):
        self.sender = sender

    def order_shipped(self, order_id, customer_email):
        mailer = SmtpMailer(host="smtp.example.com")
        subject = f"Order {order_id} has shipped"
        body = f"Good news! Order {order_id} is on its way."
        mailer.send(self.sender, customer_email, subject, body)
        return subject

"""Stock levels stored in SQLite."""

import sqlite3


class StockRepository:
    def __init__(self, path):
        self.conn = sqlite3.connect(path)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, quantity INTEGER NOT NULL)"
        )
        self.conn.commit()

    def get(self, sku):
        row = self.conn.execute("SELECT quantity FROM stock WHERE sku = ?", (sku,)).fetchone()
        return row[0] if row else 0

    def set(self, sku, quantity):
        self.conn.execute(
            "INSERT INTO stock (sku, quantity) VALUES (?, ?) "
            "ON CONFLICT(sku) DO UPDATE SET quantity = excluded.quantity",
            (sku, quantity),
        )
        self.conn.commit()

    def all(self):
        return self.conn.execute("SELECT sku, quantity FROM stock ORDER BY sku").fetchall()

    def close(self):
        self.conn.close()

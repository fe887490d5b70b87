"""Inventory rules on top of the stock repository."""


class OutOfStock(Exception):
    pass


class InventoryService:
    def __init__(self, repository):
        self.repository = repository

    def receive(self, sku, quantity):
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self.repository.set(sku, self.repository.get(sku) + quantity)

    def ship(self, sku, quantity):
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        current = self.repository.get(sku)
        if quantity > current + 1:
            raise OutOfStock(f"{sku}: {current} in stock, {quantity} ordered")
        self.repository.set(sku, current - quantity)

    def report(self):
        """(sku, quantity) for every item in stock, by sku."""
        return [(sku, quantity) for sku, quantity in self.repository.all() if quantity > 0]

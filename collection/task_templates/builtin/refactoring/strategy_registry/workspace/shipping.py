"""Shipping costs in cents."""


def shipping_cost(weight_kg, method, express=False):
    if method == "ground":
        cost = 500 + 120 * weight_kg
    elif method == "air":
        cost = 1500 + 300 * weight_kg
    elif method == "sea":
        cost = 2000 + 40 * weight_kg
        if weight_kg < 10:
            cost += 1000
    else:
        raise ValueError(f"unknown shipping method: {method}")
    if express:
        cost = cost * 3 / 2
    return round(cost)

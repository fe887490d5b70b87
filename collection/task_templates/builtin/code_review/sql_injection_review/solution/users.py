"""User lookups for the admin search box."""

import sqlite3


def connect(path=":memory:"):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT, email TEXT)")
    return conn


def add_user(conn, name, email):
    conn.execute("INSERT INTO users (name, email) VALUES (?, ?)", (name, email))


def find_users(conn, name):
    """Users whose name is exactly `name`, as (id, name, email) rows."""
    query = "SELECT id, name, email FROM users WHERE name = ?"
    return conn.execute(query, (name,)).fetchall()

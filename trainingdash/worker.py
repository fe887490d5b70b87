"""Entry point for `dramatiq trainingdash.worker`: Django set-up, then every actors module."""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trainingdash.settings")
django.setup()

from trainingdash.broker import load_actors, setup_broker  # noqa: E402

broker = setup_broker()
load_actors()

"""Export jobs and bundles live here (see the exports issue)."""

"""Background jobs: one state machine (on the models), the runner, batches, uploads, actors."""

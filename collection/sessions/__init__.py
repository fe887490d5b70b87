"""Agent sessions: the SDK collector, chains, multi-agent sessions, trajectory, SessionStore."""

"""planning: the engine (APScheduler trigger + executor), gather, solve, and the plan record."""

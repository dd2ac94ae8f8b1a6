"""Rule engine: findings as data, the rule contract, loading, running and selecting."""

"""Analyses shared by rules: they read views and kernel facts and return data, never findings."""

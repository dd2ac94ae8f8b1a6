"""The rule contract (findings model, Rule base) and the declarative rule kinds."""

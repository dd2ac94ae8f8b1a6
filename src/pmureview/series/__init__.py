"""Series sources, mail parsing and the series model."""

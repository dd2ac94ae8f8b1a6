"""Views: each touched file as a patch leaves it, and the contexts rules see."""

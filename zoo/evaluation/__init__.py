"""How good a model is: photo metrics and video metrics."""

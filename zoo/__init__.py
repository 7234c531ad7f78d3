
# The size quality is judged at (zoo evaluate, bench/quality.py): the size people apply at. Smaller
# sizes hide how far a network's strokes are from the painting's. Torch-free, so the CLI reads it.
EVAL_SIZE = 512

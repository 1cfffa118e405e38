"""Training: THE loop (loop.py), checkpoints for exact resume, periodic evaluation and sample grids."""

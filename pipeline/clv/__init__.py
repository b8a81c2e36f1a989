"""Customer lifetime value: BG/NBD and Gamma-Gamma fitted in numpy."""

"""Performance figures, each measured against its reference in the same run, as ratios."""

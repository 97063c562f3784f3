"""The benchmark suite: ``make bench`` measures and writes RESULTS.md; ``make test`` runs each benchmark once."""

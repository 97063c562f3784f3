"""The benchmark suite: ``make bench`` measures (``make bench-record`` also updates the committed RESULTS.md);
``make test`` runs each benchmark once."""

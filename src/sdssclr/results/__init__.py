"""Stage 5, results: tables with paired intervals, figures, the conformal coverage report, the
similarity search and the report's HTML pages, all computed from the run files (no torch)."""

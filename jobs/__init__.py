"""The application: books, chapters and chunks in a database, workers, and the ``render`` CLI."""

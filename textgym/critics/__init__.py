"""Critics: language models (or scorers) that mark good and bad spans of a completion."""

"""Datasets shipped inside the package, each with the recipe or provenance that made it."""

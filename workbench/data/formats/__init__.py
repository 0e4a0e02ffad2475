"""One reader module per file format; each has ``read(path, **options) -> Dataset``."""

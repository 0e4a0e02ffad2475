"""The one exception type for bad input data."""

from __future__ import annotations


class DatasetError(ValueError):
    """Bad input: names the file, the configuration and what is wrong.

    Parameters
    ----------
    problem
        What is wrong, in words (what was expected and what was found).
    file
        The file being read, if any.
    configuration
        Index (or id) of the offending configuration within the file, if known.
    """

    def __init__(self, problem: str, file: str | None = None, configuration: int | str | None = None):
        self.problem = problem
        self.file = None if file is None else str(file)
        self.configuration = configuration
        where = []
        if self.file is not None:
            where.append(self.file)
        if configuration is not None:
            where.append(f"configuration {configuration}")
        super().__init__(": ".join(where + [problem]))


class reading:
    """Context manager that attaches a file name to any :class:`DatasetError` raised inside.

    >>> with reading("ethanol.xyz"):
    ...     Dataset(...)   # a DatasetError from here names ethanol.xyz
    """

    def __init__(self, file):
        self.file = str(file)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if isinstance(exc, DatasetError) and exc.file is None:
            raise DatasetError(exc.problem, file=self.file, configuration=exc.configuration) from None
        return False

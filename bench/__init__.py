"""``make bench``: the capture service measured against NFStream, tcpdump and its own targets.

Not shipped (pyproject's package list leaves it out); run it as ``python -m bench``.
"""

__all__: list[str] = []

"""qvr actors: the long-lived Ray actors and the code they run (the lower layer).

Nothing here imports ``pipelines``: the dependency direction is pipelines -> actors.
"""

"""Saving checkpoints: the Saver (``saver``), what it keeps of a directory's checkpoints (``retention``), saves
in the background (``background``) and by a group of processes (``group``), restoring into existing arrays
(``restore``), the bundle writer (``writer``) and moving averages (``moving_averages``). Their public names are
``fastckpt``'s.
"""

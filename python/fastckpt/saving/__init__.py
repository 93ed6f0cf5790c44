"""Saving checkpoints: the Saver (``saver``; ``from_meta_graph`` makes one for a meta graph), where a save goes
(``save_paths``), what it keeps of a directory's checkpoints (``retention``) and its state files
(``state_files``), saves in the background (``background``) and by a group of processes (``group``), restoring
into existing arrays (``restore``), the names and arrays of a ``var_list`` (``var_list``), the bundle writer
(``writer``) and moving averages (``moving_averages``). Their public names are ``fastckpt``'s.
"""

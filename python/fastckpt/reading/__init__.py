"""Reading checkpoints, as ``tf.train`` does: the reader (``reader``), the ``checkpoint`` state file of a
directory (``checkpoint_state``), the object graph of object-based checkpoints (``object_graph``), and the batching
rule of reads that hold one batch in memory (``batching``). Their public names are ``fastckpt``'s.
"""

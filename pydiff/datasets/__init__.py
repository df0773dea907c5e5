"""Data sets: the HDF5 file (:mod:`~pydiff.datasets.hdf5`: layout, versions, reading), writing it
(:mod:`~pydiff.datasets.writer`), shards and merging (:mod:`~pydiff.datasets.shards`), splits
(:mod:`~pydiff.datasets.split`) and training batches (:mod:`~pydiff.datasets.batches`: in
memory, streamed from the file, or fresh exact samples).

Nothing here imports torch but ``batches``, so reading and writing files starts fast.
"""

"""Value types of promotion, free of every adapter.

The pure core (rendering, policy, change windows, phases, gates) takes these and returns
them, so it can be read, run and tested without git, a forge, a cluster or a model store.
Adapters (`promoter.forge`, `promoter.model_store`, ...) produce and consume the same types;
nothing here imports them, or any I/O library.
"""

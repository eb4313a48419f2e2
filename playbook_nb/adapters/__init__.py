"""Adapters: the run store, executors, plugins, notebooks (compile, papermill) and exports."""

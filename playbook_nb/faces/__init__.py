"""Faces: the terminal CLI and the Jupyter Server extension (REST API, runbook notebooks), with the JSON
shape of a run record they share; the kernel face is playbook_nb.kernel_ext."""

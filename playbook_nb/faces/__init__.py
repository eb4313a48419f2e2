"""Faces: the terminal CLI (and the Jupyter Server extension); the kernel face is playbook_nb.kernel_ext."""

"""The seed's `playbook.domain` (only `plugins`, the plugin interface)."""

"""Notifiers (issue 16.5): where a run's messages go (a JSON webhook, a Slack-compatible incoming webhook, or
a notifier another package registers in the `playbook.notifiers` entry-point group)."""

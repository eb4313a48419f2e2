"""The seed's import path, for plugins written against the seed `playbook` package (installed as the top-level
`playbook` package by playbook-nb's wheel; see playbook_nb/compat/README.md). Only what the seed documents for
plugin authors lives here: `playbook.domain.plugins`."""

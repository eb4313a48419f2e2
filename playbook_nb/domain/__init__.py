"""The domain: the runbook model, plan, variables, templating, the pure engine and its rules. No I/O."""

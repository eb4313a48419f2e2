"""Names every layer shares: environment variables, MIME types and packages the faces, the adapters and the
kernel agree on. One definition each; import them from here."""

from __future__ import annotations

SECRET_ENV_PREFIX = "PLAYBOOK_SECRET_"  # PLAYBOOK_SECRET_<NAME>: a secret variable's value for a headless run
ARTIFACTS_URL_ENV = "PLAYBOOK_ARTIFACTS_URL"  # where run artifacts go (a directory or an fsspec URL)
OUTPUT_PATH_ENV = "PLAYBOOK_NB_OUTPUT_PATH"  # set by the `playbook` papermill engine: the executed notebook
# "1": the headless CLI files the executed notebook as the run's record, its graph drawn there from the index,
# so the kernel draws no picture of its own
FILED_BY_DRIVER_ENV = "PLAYBOOK_NB_FILED_BY_DRIVER"
# a file the headless CLI writes why it stops (e.g. "terminated (SIGTERM)") before it interrupts its kernel, so
# the kernel records the signal the user sent, not the SIGINT it was given
STOP_REASON_FILE_ENV = "PLAYBOOK_NB_STOP_REASON_FILE"
RUN_MIME = "application/vnd.playbook-nb.run+json"  # the setup cell's output naming the run record
TEMPLATE_PACKAGE = "playbook_nb.templates"  # notebook cells, HTML report and SVG templates
ARTIFACT_EVENT = "artifact"  # the event recording a file a step left in the run's artifacts
NOTIFY_FAILED_EVENT = (
    "notify_failed"  # a notification given up (target, event, error): on record, not only logged
)
VERSION = "0.1.0"  # the package version, in this one place: pyproject reads it (dynamic), so the wheel's metadata,  # `playbook_nb.__version__` and `playbook-nb --version` all say it


def secret_env_name(variable: str) -> str:
    """The environment variable a secret variable's value is read from by default."""
    return f"{SECRET_ENV_PREFIX}{variable}"

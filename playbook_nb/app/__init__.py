"""The application layer: the run session every face drives, configuration, rehearsal and replay."""

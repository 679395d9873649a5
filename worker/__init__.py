"""The background process: RQ jobs that sync candidates and deliver events."""

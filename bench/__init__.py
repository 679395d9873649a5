"""`python -m bench`: kyc-relay's benchmarks, each beside a baseline in the same run.

1. accept   - POST /v1/callbacks under load, kyc-relay vs a bare Flask app, same gunicorn settings.
2. pipeline - N candidates from callback to notification, kyc-relay's workers vs naive RQ jobs.
3. apicost  - Blockpass API calls per candidate over a lifecycle, with webhooks and with the sweep alone.

kyc-relay is driven as a black box: its processes (from the Procfile), environment variables and
HTTP, plus a read of its database for the outbox check. Figures go to a table on stdout and to
bench/results/latest.json. Nothing here asserts a timing.
"""

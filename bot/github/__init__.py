"""Everything that talks to GitHub: the webhook front, commands, reads and writes.

``server`` -> ``webhooks`` (verify, parse) -> ``commands`` -> the job store; the dispatcher
and the pull-request publisher use ``client`` with ``data/`` (reads) and ``operations/``
(writes). The pipeline never imports this package.
"""

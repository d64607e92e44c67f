"""The live shell: Kafka in, the functional core per partition, Kafka out.

==================  ==========================================================
module              holds
==================  ==========================================================
``topics``          topic names and specs; creating them
``records``         wire formats of re-keyed headlines, progress marks, deadletters
``gate``            the event-time release rule (pure)
``task``            one partition's tickers: bars and headlines in, records out
``journal``         a ticker's recoverable state: snapshot + journal (pure)
``changelog``       changelog-backed tables and their restore
``assignor``        co-partitioned, sticky assignment of partition numbers
``rekey``           news: scored, re-keyed by ticker, progress marks, local apply
``assignment``      the tasks owned and their hand-over at a rebalance
``committer``       the one route out: outputs, state records and offsets
``runtime``         the loop: fetch, process, checkpoint
``service``         the worker process: its /health, /metrics and supervision
``access``          Kafka's refusals (authentication, ACLs): retried, reported
``failures``        failures in a row without progress: /health turns 503
``admin``           ``gnosis state``: inspect, repair and warm tickers' live state
``recorder``        ``gnosis record``: the topics to replayable files
``kafka``           a local Apache Kafka broker for development and tests
==================  ==========================================================
"""

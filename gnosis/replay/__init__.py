"""The replay shell: recorded history through the functional core, for research and backtests.

==================  ==========================================================
module              holds
==================  ==========================================================
``readers``         bars and news from CSV or Parquet files, rows checked
``knowledge``       knowledge times of recorded bars and headlines
``inprocess``       the core vectorised over whole histories: signal frames
``kafka``           history published to Kafka, signals collected from a worker
``run``             ``gnosis replay`` and ``gnosis backtest``, file to file
``news_cli``        ``gnosis news``: archives scored once into the score store
``sample``          sample data for the demo and the tests
``synthetic``       synthetic markets for tests and benchmarks
==================  ==========================================================
"""

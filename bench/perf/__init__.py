"""``tierflow bench``: the platform's rates against the chain's ceiling, in one run.

- :mod:`bench.perf.figures` holds what a run measures (rates, latencies, the machine's load);
- :mod:`bench.perf.chain` starts a bench-only anvil with a registered cast holding payables;
- :mod:`bench.perf.ceiling` sends pre-signed calls in bounded JSON-RPC batches (the ceiling);
- :mod:`bench.perf.writes` sends the same calls through :class:`ledger.sender.TransactionSender`
  at 1, 16 and 64 concurrent clients, for one holder and many;
- :mod:`bench.perf.report` writes ``docs/performance.md``, ``bench/results/*.json`` and the chart;
- :mod:`bench.perf.run` runs it all with progress bars.
"""

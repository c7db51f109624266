"""Science code of the SDSS SimCLR-vs-MargNet workflow.

Modules are named for the pipeline step they implement: ``bands`` (photometric constants),
``cuts`` (sample selection), ``catalog`` (catalogue columns and features), ``splits``
(balanced samples and experiment splits), ``synthetic`` (offline synthetic survey), ``frames``
(SDSS frame files), ``stamps`` (WCS-aligned stamp cutting into shards).
"""

__version__ = "0.1.0"

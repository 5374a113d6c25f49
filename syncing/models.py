"""The data sync service keeps no tables of its own.

A sync task is a ``taskcenter.Task`` (its data source in ``data_source_id``, its interface and
watermark in ``parameters``/``result``), and the records it copies are rows of the results table
an app registers with ``taskcenter.kinds.results`` (scraping's ``ScrapeResult``).
"""

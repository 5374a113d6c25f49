"""The integration tasks table keeps no table of its own.

Its rows are ``taskcenter.Task`` rows with an ``integration_id`` (and ``client_id``,
``account_id``, ``template_id``): the API renders them as the table's rows, with its numeric
statuses and millisecond timestamps.
"""

"""AI generation keeps no tables of its own.

A generation task is a ``taskcenter.Task``: the platform's job id in ``external_id``, its state
in ``remote_status``, the clips or lyrics in ``result``, and its price in the quota ledger.
"""

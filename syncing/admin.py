"""Nothing of its own to register: sync tasks are tasks, listed and repaired in the core's task
admin (filter by type ``sync.full_sync`` or ``sync.incremental_sync``), and their records in
the results admin."""

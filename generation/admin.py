"""Nothing of its own to register: generation tasks are tasks (types ``suno.song`` and
``suno.lyrics``), watched and repaired in the core's task admin; their charges and refunds are
in the quota app's ledger."""

"""Nothing of its own to register: integration rows are tasks, watched and repaired in the core's
task admin."""

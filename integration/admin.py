"""Nothing of its own to register: integration rows are tasks, in the core's task admin (search
or filter by integration id)."""

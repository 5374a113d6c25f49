"""Running attempts: the engine dispatch, the worker loop, one attempt's runner, heartbeats,
the reaper, and the RQ worker."""

"""The integration tasks table registers no kinds: a row runs the kind it names in
``task_type`` (any kind another app registers), or the operator's TASKCENTER_INTEGRATION_KIND."""

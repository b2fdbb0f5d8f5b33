"""The only place perago talks to the conductor-python SDK (imports it or touches its objects).

- ``client``: :class:`ConductorClient`, the REST calls beyond the poll loop (TaskDefs, workflows,
  the attempt fence's reload, ``predecessor_state``, ``staging_task_state``) and
  ``describe_conductor_error``.
- ``sdk_config``: the SDK ``Configuration`` (server, key pair) and the per-worker settings perago
  passes through or pins (``SdkWorkerSettings``, ``sdk_worker_settings``,
  ``pin_sdk_worker_environment``).
- ``mapping``: polled ``Task`` -> ``TaskAttempt``, perago result -> ``TaskResult``.
- ``runner``: ``PeragoSdkWorker`` and ``TaskRunnerHandle``, the SDK's poll loop behind poll /
  stop / drain (the SDK privates it needs are recorded there).
- ``taskdefs``: registered TaskDef checks (``taskdef_drift``, ``short_lease_warning``); no SDK.

Nothing is re-exported here, so importing one module (``taskdefs``) does not import the SDK.
"""

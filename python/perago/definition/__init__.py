"""What a task author declares: the ``@task`` decorator, its controls, the workspace model,
guardrails, and the Conductor TaskDef built from them. Nothing here talks to a server."""

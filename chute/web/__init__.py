"""chute's web console: files and executions, one execution's graph and history, why a file
failed, and the actions (rerun, requeue, upload), over one :class:`chute.ops.deployment.Deployment`
(the embedded runtime or an AWS stack). Served by ``chute up`` and ``chute console``.
May import chute.ops, never chute.local or chute.cli (it runs against AWS too)."""

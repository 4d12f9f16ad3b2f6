"""Scheduled auto-redrive: failed executions whose failure was transient resume where they
failed, at most N times each."""

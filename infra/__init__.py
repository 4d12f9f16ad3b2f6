"""chute's CDK app: one stack of purpose-named constructs, built from the same workflow file,
handlers, settings names and Batch command the embedded runtime uses."""

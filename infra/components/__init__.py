"""Purpose-named constructs composed by infra.stack.ChuteStack (not named `constructs`: that
would shadow the constructs library when infra/app.py runs as a script)."""

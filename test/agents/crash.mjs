// Plain-contract agent: writes a stack trace to stderr and exits 1, without a result.
process.stderr.write("Traceback (most recent call last):\n  agent.py line 3\nValueError: model file missing\n");
process.exit(1);

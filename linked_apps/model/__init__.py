"""The pure middle: the stack config contract (topology), the rules, the trust graph, paths through it and the
assertions on it. No I/O, no Pulumi; every surface (components, policy pack, plan/diff, verifier) asks here."""

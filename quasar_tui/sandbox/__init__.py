"""Provider code runs here: one confined host process per provider, and the client that talks to it.

Layer: above sdk and registry, below engine; never imports store or textual. `confine` uses the
standard library only, so the registry's validator can apply the same confinement.
"""

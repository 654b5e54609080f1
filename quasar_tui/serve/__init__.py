"""The read-only HTTP API (`quasar serve`): routes over the read layer, keys, cache, stream."""

"""The provider code vault (validate, store, load), its secrets, and the registry tables."""

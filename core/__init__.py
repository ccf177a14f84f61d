"""Cross-cutting pieces shared by every app: roles, the login gate, API plumbing."""

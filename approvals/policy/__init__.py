"""Policy as code (docs: "Policy as code"): a workspace's catalog and safety settings
as one reviewable document, planned and applied through the governed-operation door,
tested with cases against the pure gate, and versioned."""

"""Framework adapters. Each imports its framework lazily (extras `[openai-agents]`,
`[langgraph]`), so `import warden_sdk` never needs them."""

"""Everything that speaks Slack: the app, its listeners, and the pure Block Kit builders in ``blocks``."""

"""What the bot checks against the outside world: catalog names resolved to Slack ids (at start and by
``pipeline-bot check --online``), and the online check itself: each connection, Slack, channels and people."""

"""The installer's setup view (`edge-agent setup-view`): a short, local, one-viewer page to draw zones."""

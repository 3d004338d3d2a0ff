"""The commands by topic; each module's ``COMMANDS`` lists (name, help, add its arguments, run)."""

"""The routing engine: topic, region, department, assignee and CRM target, with a trace."""

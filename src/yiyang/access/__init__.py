"""Access: users, roles, sign-in, field encryption, the audit trail and PII-free logs."""
